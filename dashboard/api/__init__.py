"""The HTTP door (FastAPI + Starlette, served by Streamlit's own uvicorn): /api/v1, the TF Serving and MLflow compatible
routes, the bearer-token gate and the connection bounds."""
