# A local stand-in for the official jaegertracing/jaeger (v2) and otel/opentelemetry-collector
# images, for machines that reach no container registry: the `jaeger` binary built from the
# Go module proxy (scripts/setup/docker/standins.sh). Jaeger v2 is an OpenTelemetry Collector
# distribution, so the same binary runs deploy/compose/otel-collector/config.yaml too.
# Same entry point shape as both official images (the binary, then flags). Its UI is Jaeger's
# placeholder page (the UI assets are not in the Go module); the query API is complete.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG SETUP_KEY
COPY jaeger /cmd/jaeger/jaeger-linux
RUN ln -s /cmd/jaeger/jaeger-linux /otelcol && /cmd/jaeger/jaeger-linux --help >/dev/null
ENV JAEGER_LISTEN_HOST=0.0.0.0
LABEL io.currency-nodes.setup-key=${SETUP_KEY}
USER 10001
EXPOSE 4317 4318 16686 13133
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
