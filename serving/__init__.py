"""SonicForge's serving API (FastAPI): accounts, stream, votes, tracks,
sharing, pipeline runs and health, on the app database and Redis.

Start it with ``sonicforge serve`` or ``uvicorn --factory serving.app:create_app``.
"""
