import t from 'tap';
import { closest, editDistance } from '../../src/model/closest.js';

t.test('edit distance counts a swap of neighbours as one edit', async (t) => {
  t.equal(editDistance('mode', 'mode'), 0);
  t.equal(editDistance('mdoe', 'mode'), 1);
  t.equal(editDistance('limts', 'limits'), 1);
  t.equal(editDistance('nope', 'nice'), 2);
  t.equal(editDistance('', 'abc'), 3);
});

t.test('closest names a likely typo only', async (t) => {
  const keys = ['mode', 'user', 'group', 'backlog', 'limits', 'nice'];
  t.equal(closest('mdoe', keys), 'mode');
  t.equal(closest('backlg', keys), 'backlog');
  t.equal(closest('nope', keys), null, 'two edits are too many for a 4-letter word');
  t.equal(closest('frobnicate', keys), null);
  t.equal(closest('stauts', ['status', 'stop', 'start']), 'status');
});
