'use strict';
/**
 * A node's gRPC call as the controller core sees it, without a socket: an EventEmitter
 * the bench emits decoded frames on ('data'), that takes whatever the core writes (and
 * counts it). Shared by core-cpu.js and core-stop.js.
 */
const { EventEmitter } = require('node:events');
const grpc = require('@grpc/grpc-js');

class FakeCall extends EventEmitter {
  constructor(i) {
    super();
    this.metadata = new grpc.Metadata();
    this.metadata.set('x-currency-node-name', `n${i}`);
    this.peer = `ipv4:127.0.0.1:${10000 + (i % 50000)}`;
    this.writableLength = 0;
    this.cancelled = false;
    this.writes = 0;
  }
  getPeer() {
    return this.peer;
  }
  sendMetadata() {}
  write() {
    this.writes++;
    return true;
  }
  end() {}
}

module.exports = { FakeCall };
