#!/usr/bin/env python3
"""Counts test outcomes for .ci/run from meson's logs and the extra CI steps.

meson prints no 'N passed, N failed' line, and a gtest case skipped with GTEST_SKIP exits 0 and
shows only in testlog.junit.xml. So: for every build directory given, read
meson-logs/testlog.junit.xml; each <testcase> is one result (gtest-protocol tests are expanded
into their cases by meson); a case that failed, errored or was skipped counts as failed.
A test listed in testlog.json but missing from the junit file (a crashed gtest binary) counts from
its own result. Extra steps (format check, fuzz runs, bench smoke) come from a steps file with
lines 'pass NAME' / 'fail NAME'.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def count_build(builddir):
    passed = failed = 0
    failures = []
    logdir = os.path.join(builddir, 'meson-logs')
    junit = os.path.join(logdir, 'testlog.junit.xml')
    jsonlog = os.path.join(logdir, 'testlog.json')
    suites_in_junit = set()
    if os.path.exists(junit):
        root = ET.parse(junit).getroot()
        for suite in root.iter('testsuite'):
            for case in suite.findall('testcase'):
                name = suite.get('name', '') + '/' + case.get('classname', '') + '.' + case.get('name', '')
                bad = case.find('failure') is not None or case.find('error') is not None \
                    or case.find('skipped') is not None
                if bad:
                    failed += 1
                    failures.append(name)
                else:
                    passed += 1
    # Tests whose binary died before writing its case list show up as a single failed
    # testcase in junit already (meson writes one testcase per test without sub-results).
    if not os.path.exists(junit) and os.path.exists(jsonlog):
        with open(jsonlog) as f:
            for line in f:
                t = json.loads(line)
                if t.get('result') in ('OK', 'EXPECTEDFAIL'):
                    passed += 1
                else:
                    failed += 1
                    failures.append(t.get('name', '?'))
    return passed, failed, failures


def main():
    steps_file = sys.argv[1]
    builddirs = sys.argv[2:]
    passed = failed = 0
    failures = []
    for b in builddirs:
        p, f, names = count_build(b)
        print(f'{b}: {p} passed, {f} failed', file=sys.stderr)
        passed += p
        failed += f
        failures += [b + ': ' + n for n in names]
    if os.path.exists(steps_file):
        with open(steps_file) as f:
            for line in f:
                parts = line.split(None, 1)
                if not parts:
                    continue
                if parts[0] == 'pass':
                    passed += 1
                else:
                    failed += 1
                    failures.append('step: ' + (parts[1].strip() if len(parts) > 1 else '?'))
    for n in failures:
        print('FAILED ' + n)
    print(f'{passed} passed, {failed} failed')
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
