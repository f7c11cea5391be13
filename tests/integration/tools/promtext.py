#!/usr/bin/env python3
"""promtext.py — a small parser of the Prometheus text format (0.0.4) for the tests.

  promtext.py check FILE        exits 1 naming the first violation of the format
  promtext.py get FILE SERIES   prints the value of one series, 0 when absent
                                (SERIES as `name{a="x",b="y"}`, labels in any order)

Checked: every sample belongs to a family declared by "# TYPE" before it, once;
names and label names match the grammar; values are numbers; histogram buckets
are cumulative (non-decreasing in le), end with le="+Inf" equal to _count, and
have a _sum; counters are non-negative."""
import re
import sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
SAMPLE = re.compile(r'^(' + NAME + r')(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def labels_of(text):
    out, pos = {}, 0
    while text and pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError('bad label set {%s}' % text)
        if m.group(1) in out:
            raise ValueError('label %s twice' % m.group(1))
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def parse(path):
    types, samples = {}, []
    for n, line in enumerate(open(path, encoding='utf-8'), 1):
        line = line.rstrip('\n')
        if not line:
            continue
        if line.startswith('#'):
            p = line.split(None, 3)
            if len(p) >= 3 and p[1] == 'TYPE':
                if p[2] in types:
                    raise ValueError('line %d: TYPE %s twice' % (n, p[2]))
                if len(p) < 4 or p[3] not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                    raise ValueError('line %d: bad TYPE' % n)
                types[p[2]] = p[3]
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError('line %d: not a sample: %r' % (n, line))
        name, lab, val = m.group(1), labels_of(m.group(3) or ''), float(m.group(4))
        fam = name
        for suf in ('_bucket', '_sum', '_count'):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == 'histogram':
                fam = name[:-len(suf)]
        if fam not in types:
            raise ValueError('line %d: %s has no TYPE before it' % (n, name))
        if types[fam] == 'counter' and val < 0:
            raise ValueError('line %d: negative counter' % n)
        samples.append((fam, name, lab, val))
    return types, samples


def check_histograms(types, samples):
    series = {}
    for fam, name, lab, val in samples:
        if types[fam] != 'histogram':
            continue
        key = (fam, tuple(sorted((k, v) for k, v in lab.items() if k != 'le')))
        s = series.setdefault(key, {'buckets': [], 'sum': None, 'count': None})
        if name.endswith('_bucket'):
            s['buckets'].append((float(lab['le']), val))
        elif name.endswith('_sum'):
            s['sum'] = val
        else:
            s['count'] = val
    for key, s in series.items():
        b = s['buckets']
        if not b or b[-1][0] != float('inf'):
            raise ValueError('%s: no le="+Inf" bucket last' % (key,))
        if [x for x, _ in b] != sorted(x for x, _ in b):
            raise ValueError('%s: buckets out of order' % (key,))
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise ValueError('%s: buckets not cumulative' % (key,))
        if s['count'] != b[-1][1] or s['sum'] is None:
            raise ValueError('%s: _count differs from +Inf bucket or no _sum' % (key,))


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    try:
        types, samples = parse(path)
        check_histograms(types, samples)
    except ValueError as e:
        print('invalid Prometheus text: %s' % e)
        return 1
    if cmd == 'check':
        return 0
    m = re.match(r'^(' + NAME + r')(\{(.*)\})?$', sys.argv[3])
    want = (m.group(1), labels_of(m.group(3) or ''))
    for _, name, lab, val in samples:
        if (name, lab) == want:
            print('%d' % val if val == int(val) else val)
            return 0
    print(0)
    return 0


sys.exit(main())
