from tests.test_app import downloads, start  # noqa: F401


def test_smoke(env, downloads):  # noqa: F811
    at = start()
    at.button(key="single-submit").click().run()
    assert not at.exception
    print([e.label for e in at.expander])
    at.selectbox(key="feedback-label").select("virginica")
    at.text_area(key="feedback-comment").input("petals were long")
    at.button(key="feedback-submit").click().run()
    assert not at.exception, at.exception
    print([s.value for s in at.success])
    at.session_state["tab"] = "History"
    at.run()
    assert not at.exception, at.exception
    print(at.main.dataframe[0].value)
    at.selectbox(key="history-open").select_index(0).run()
    print(at.main.dataframe[1].value)
    at.session_state["tab"] = "Feedback"
    at.run()
    assert not at.exception, at.exception
    for d in at.main.dataframe:
        print(d.value)
    print(downloads(at.get("download_button")[-1]))
    print([c.value for c in at.sidebar.caption])
