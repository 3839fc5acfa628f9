# ccpulse image: the `ccpulse` command (worker, replay, simulate, kpis, wallboard, settings).
#   docker build -t ccpulse:0.1.0 .
#   docker run --rm ccpulse:0.1.0 settings
# docker-compose.yml builds it for the worker, wallboard and simulator services.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY stream ./stream
COPY sinks ./sinks
COPY ccpulse ./ccpulse
RUN pip install --no-cache-dir --root-user-action=ignore --prefix=/install .

FROM python:3.11.11-slim-bookworm
RUN useradd --create-home --uid 10001 ccpulse
COPY --from=build /install /usr/local
USER ccpulse
WORKDIR /home/ccpulse
# the data folder exists, owned by ccpulse, so a volume mounted on it (compose) is writable
RUN mkdir -p /home/ccpulse/data
# In a container the web port must listen beyond loopback; everything else keeps its default.
ENV PYTHONUNBUFFERED=1 \
    CCPULSE_WEB_HOST=0.0.0.0 \
    CCPULSE_DATA_DIR=/home/ccpulse/data
# 6066: a worker's /metrics and /healthz (CCPULSE_WEB_PORT); 8088: `ccpulse wallboard`.
EXPOSE 6066 8088
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=12 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=3).status != 200)"]
ENTRYPOINT ["ccpulse"]
CMD ["worker"]
