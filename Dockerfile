# backportbot: `docker run -v ./config:/config -v bbdata:/data -it backportbot`
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git bubblewrap && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 backportbot \
    && mkdir -p /data /config && chown backportbot /data /config
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-cache-dir .
USER backportbot
ENV BACKPORTBOT_HOME=/data
VOLUME ["/data", "/config"]
ENTRYPOINT ["backportbot", "--config", "/config/backportbot.toml"]
CMD ["serve"]
