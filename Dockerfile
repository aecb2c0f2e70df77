FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchard orchard
COPY sensors sensors
COPY dashboard dashboard
COPY analytics analytics
COPY video video
COPY deploy deploy
RUN pip install --no-cache-dir -e .
USER nobody
