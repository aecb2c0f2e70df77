# The one application image: ingest, analytics, cameras, grading, the dashboard and the admin commands all run
# from it (docker-compose.yml picks the command). Runs as the unprivileged user `orchard`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# OpenCV's headless wheel still wants GLib; tzdata for the site's time zone; tini reaps children and passes signals.
RUN apt-get update && apt-get install -y --no-install-recommends libglib2.0-0 tzdata tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/orchard orchard \
    && mkdir -p /data /mosquitto/auth && chown orchard:orchard /data /mosquitto/auth
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchard orchard
COPY sensors sensors
COPY dashboard dashboard
COPY analytics analytics
COPY video video
COPY deploy deploy
# Editable: the code and deploy/ (the ACL template `orchard admin mqtt-auth` reads) stay in /app.
RUN pip install -e .
USER orchard
ENV ORCHARD_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8501
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["orchard", "--help"]
