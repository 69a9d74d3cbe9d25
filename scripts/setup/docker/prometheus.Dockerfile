# A local stand-in for the official prom/prometheus image, for machines that reach no container
# registry: Debian's `prometheus` package on the debootstrap base (scripts/setup/docker/
# standins.sh). Same entry point shape as the official image (the binary, then flags), same
# paths (/bin/prometheus via merged /usr, /etc/prometheus, /prometheus), same user (nobody),
# so deploy/compose works with both.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG SETUP_KEY
# policy-rc.d: the package's maintainer scripts must not try to start a service in the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
  && apt-get update -q \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
  && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
  && test -x /bin/prometheus && test -x /bin/promtool \
  && mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus \
  && prometheus --version && promtool --version
LABEL io.currency-nodes.setup-key=${SETUP_KEY}
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
