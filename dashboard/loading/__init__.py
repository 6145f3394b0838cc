"""Files on disk -> a model that predicts: safety checks on untrusted files, Keras and LiteRT runtimes. The only
place that imports keras, tensorflow or ai_edge_litert."""
