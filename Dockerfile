# The one application image: ingest, analytics, cameras, grading, the dashboard and the admin commands all run
# from it (docker-compose.yml picks the command). Runs as the unprivileged user `orchard`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# OpenCV's headless wheel still wants GLib; tzdata for the site's time zone; tini reaps children and passes signals;
# ffmpeg records the rtsp cameras (video/recorder.py) and cuts the clips around events.
RUN apt-get update && apt-get install -y --no-install-recommends libglib2.0-0 tzdata tini ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/orchard orchard \
    && mkdir -p /data /mosquitto/auth && chown orchard:orchard /data /mosquitto/auth
# Build the wheel and install only it (the sources are removed again): the image runs what `pip install .` gives a user,
# with every file the services read at run time (site files, texts, migrations, the ACL template) inside it.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY orchard orchard
COPY sensors sensors
COPY dashboard dashboard
COPY analytics analytics
COPY video video
COPY app app
COPY bench bench
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install /wheels/*.whl \
    && rm -rf /build /wheels
WORKDIR /home/orchard
USER orchard
ENV ORCHARD_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8501
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["orchard", "--help"]
