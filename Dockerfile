# backportbot: see README.md, "Running in a container" (or compose.yaml).
#   docker build -t backportbot .
#   docker run -d -p 8080:8080 -v ./config:/config:ro -v backportbot-data:/data --env-file bot.env backportbot
FROM python:3.11-slim
# git does the picking; bubblewrap isolates a fix's build and tests; tini is PID 1, so signals reach
# the bot (it stops gracefully on SIGTERM) and the children it leaves are reaped. Versions come with
# the base image's Debian release: pinning them would break the build at its next point release.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git bubblewrap tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 backportbot \
    && mkdir -p /data /config && chown 10001:10001 /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-cache-dir .
USER 10001:10001
ENV BACKPORTBOT_HOME=/data PYTHONUNBUFFERED=1
VOLUME ["/data"]
# GitHub webhooks and Slack's HTTP mode ([serve] port; Socket Mode and Discord need no port).
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["backportbot", "health"]
ENTRYPOINT ["tini", "--", "backportbot", "--config", "/config/backportbot.toml"]
CMD ["serve", "--host", "0.0.0.0"]
