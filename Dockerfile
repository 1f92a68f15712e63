FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-cache-dir .
ENV BACKPORTBOT_HOME=/data
VOLUME /data
ENTRYPOINT ["backportbot"]
CMD ["demo"]
