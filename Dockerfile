# perf-exporter: the daemon, its rules and dashboards.
#   docker build -t perf-exporter .
#   docker run -p 9469:9469 -v $PWD/config.yaml:/etc/perf-exporter/config.yaml perf-exporter
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
COPY rules /usr/share/perf-exporter/rules
COPY grafana /usr/share/perf-exporter/grafana
COPY exporter/demo/tripo04os.yaml /usr/share/perf-exporter/examples/tripo04os.yaml
USER 65534:65534
EXPOSE 9469
# plain HTTP, or TLS and basic auth from --web.config.file: the check finds which (docs/configuration.md)
HEALTHCHECK --interval=30s --timeout=6s CMD ["perf-exporter", "healthcheck"]
ENTRYPOINT ["perf-exporter"]
CMD ["run", "--config.file", "/etc/perf-exporter/config.yaml", "--log.format", "json"]
