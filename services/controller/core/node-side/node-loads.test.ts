import { seededRandom } from '../../../shared/scheduler';
import { NodeLoads } from './node-loads';

describe('NodeLoads', () => {
  test('the largest load follows streams added and removed, and nodes that leave', () => {
    const loads = new NodeLoads();
    expect(loads.max()).toBe(0);
    loads.joined();
    loads.joined();
    loads.added(0);
    loads.added(1);
    expect(loads.max()).toBe(2);
    loads.added(0);
    expect(loads.max()).toBe(2);
    loads.removed(2);
    expect(loads.max()).toBe(1);
    loads.left(1);
    expect(loads.max()).toBe(1);
    loads.left(1);
    expect(loads.max()).toBe(0);
  });

  test('after every node left at once (reset), counts start again from nothing', () => {
    const loads = new NodeLoads();
    loads.joined();
    loads.joined();
    loads.added(0);
    loads.added(1);
    loads.added(0);
    loads.reset();
    expect(loads.max()).toBe(0);
    loads.joined();
    loads.added(0);
    expect(loads.max()).toBe(1);
    // Had the old counts stayed, this node leaving would leave a load of 2 behind.
    loads.left(1);
    expect(loads.max()).toBe(0);
  });

  test('agrees with a recount after 5,000 random steps', () => {
    const random = seededRandom(7);
    const loads = new NodeLoads();
    const nodes: number[] = [];
    for (let step = 0; step < 5000; step++) {
      const r = random();
      const i = Math.floor(random() * nodes.length);
      if (nodes.length === 0 || r < 0.1) {
        nodes.push(0);
        loads.joined();
      } else if (r < 0.15) {
        loads.left(nodes[i]!);
        nodes.splice(i, 1);
      } else if (r < 0.6) {
        loads.added(nodes[i]!);
        nodes[i]!++;
      } else if (nodes[i]! > 0) {
        loads.removed(nodes[i]!);
        nodes[i]!--;
      }
      expect(loads.max()).toBe(Math.max(0, ...nodes));
    }
  });
});
