// Makes the three programs executable, so npm bin links and image PATH entries run them.
const { chmodSync } = require('node:fs');
for (const role of ['controller', 'node', 'cli']) {
  chmodSync(`dist/services/${role}/main.js`, 0o755);
}
