#!/usr/bin/env python3
"""rdma-core's own test suite (tests/ of Debian's rdma-core source, run
with Debian's python3-pyverbs), case by case, for test/peer/rdma_core_tests.sh.

    rdma_core_run.py --list --tests DIR
        print every case id (tests.test_pd.PDTest.test_alloc_pd ...)
    rdma_core_run.py --driver --tests DIR --work DIR --results FILE
                     [--case-timeout S] [--filter RE] -- PREFIX...
        run the cases in workers "PREFIX... python3 rdma_core_run.py
        --worker ..." (the prefix preloads the device, drops privileges);
        a worker that dies or stops answering has its current case marked
        crash or timeout and a new worker goes on after it. Writes FILE:
        "id<TAB>status<TAB>detail" per case, status one of pass, fail,
        error, skip, xfail, xpass, crash, timeout.
    rdma_core_run.py --worker --tests DIR --ids FILE --out FILE
        (inside the prefix) run the cases listed in --ids in order, write
        "start ID" before and "result ID STATUS DETAIL" after each one.
    rdma_core_run.py --summary --results FILE [--expected FILE]
        per-module counts, the main reasons of failures and skips, the
        total; with --expected: exit 1 when a case listed there did not
        pass, and name the cases that pass and are not listed.
"""
import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import time


def _import_tests(tests_dir, extra_args):
    tests_dir = os.path.abspath(tests_dir)
    sys.path.insert(0, tests_dir)  # args_parser, base, utils ...
    sys.path.insert(0, os.path.dirname(tests_dir))  # the "tests" package
    saved = sys.argv
    sys.argv = [saved[0]] + list(extra_args)
    from args_parser import parser
    parser.parse_args()
    sys.argv = saved
    import unittest
    import tests  # noqa: F401  (loads every test module)
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules['tests'])
    out = []

    def flat(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                flat(t)
            else:
                out.append(t)
    flat(suite)
    return out


def one_line(s, n=300):
    s = ' '.join(str(s).split())
    return s[:n]


def reason_of(err_text):
    """the last line of a traceback: the exception and its message"""
    lines = [ln for ln in err_text.strip().splitlines() if ln.strip()]
    return one_line(lines[-1] if lines else err_text)


def worker(a):
    import unittest
    cases = _import_tests(a.tests, a.args)
    want = [ln.strip() for ln in open(a.ids) if ln.strip()]
    by_id = {t.id(): t for t in cases}
    out = open(a.out, 'a', buffering=1)
    timeout = a.case_timeout

    class Timeout(Exception):
        pass

    def on_alarm(sig, frm):
        raise Timeout(f'no result within {timeout} s')

    signal.signal(signal.SIGALRM, on_alarm)

    class Result(unittest.TestResult):
        def __init__(self):
            super().__init__()
            self.cur = None
            self.status = None

        def startTest(self, test):
            super().startTest(test)
            self.cur = test.id()
            self.status = ('pass', '')
            out.write(f'start {self.cur}\n')
            signal.alarm(timeout)

        def stopTest(self, test):
            signal.alarm(0)
            super().stopTest(test)
            st, detail = self.status
            out.write(f'result {test.id()}\t{st}\t{one_line(detail)}\n')

        def addError(self, test, err):
            super().addError(test, err)
            text = self._exc_info_to_string(err, test)
            if not hasattr(test, '_testMethodName'):
                # a class or module fixture (setUpClass ...): its own line
                out.write(f'result {test.id()}\terror\t{reason_of(text)}\n')
                return
            self.status = ('timeout' if 'Timeout: no result within' in text else 'error', reason_of(text))

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self.status = ('fail', reason_of(self._exc_info_to_string(err, test)))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            if not hasattr(test, '_testMethodName'):
                out.write(f'result {test.id()}\tskip\t{one_line(reason)}\n')
                return
            self.status = ('skip', reason)

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self.status = ('xfail', '')

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self.status = ('xpass', '')

    suite = unittest.TestSuite([by_id[i] for i in want if i in by_id])
    for i in want:
        if i not in by_id:
            out.write(f'result {i}\terror\tno such case\n')
    suite.run(Result())
    out.write('done\n')
    return 0


def driver(a, prefix):
    os.makedirs(a.work, exist_ok=True)
    listing = subprocess.run([sys.executable, os.path.abspath(__file__), '--list', '--tests', a.tests] +
                             (['--'] + a.args if a.args else []),
                             capture_output=True, text=True)
    if listing.returncode != 0:
        print(f'rdma_core_run: cannot list the cases: {listing.stderr.strip()[-600:]}', file=sys.stderr)
        return 2
    ids = [ln for ln in listing.stdout.splitlines() if ln.strip()]
    if a.filter:
        ids = [i for i in ids if re.search(a.filter, i)]
    results = collections.OrderedDict()
    remaining = list(ids)
    nworker = 0
    t0 = time.time()
    while remaining:
        nworker += 1
        ids_file = os.path.join(a.work, f'ids-{nworker}.txt')
        out_file = os.path.join(a.work, f'out-{nworker}.txt')
        log_file = os.path.join(a.work, f'worker-{nworker}.log')
        with open(ids_file, 'w') as f:
            f.write('\n'.join(remaining) + '\n')
        open(out_file, 'w').close()
        os.chmod(out_file, 0o666)
        os.chmod(ids_file, 0o644)
        cmd = prefix + [a.python, os.path.abspath(__file__), '--worker', '--tests', a.tests,
                        '--ids', ids_file, '--out', out_file, '--case-timeout', str(a.case_timeout)]
        if a.args:
            cmd += ['--'] + a.args
        with open(log_file, 'w') as log:
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=a.work)
        size, last = -1, time.time()
        killed = None
        while p.poll() is None:
            time.sleep(0.2)
            s = os.path.getsize(out_file)
            if s != size:
                size, last = s, time.time()
            elif time.time() - last > a.case_timeout + 30:
                killed = 'timeout'
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        started = None
        finished = False
        for ln in open(out_file, errors='replace'):
            ln = ln.rstrip('\n')
            if ln.startswith('start '):
                started = ln[6:]
            elif ln.startswith('result '):
                cid, st, detail = (ln[7:].split('\t') + ['', ''])[:3]
                results[cid] = (st, detail)
                if cid == started:
                    started = None
            elif ln == 'done':
                finished = True
        done_ids = set(results)
        if started is not None:
            tail = open(log_file, errors='replace').read().strip().splitlines()[-3:]
            why = killed or f'the worker died (exit {p.returncode})'
            results[started] = ('timeout' if killed else 'crash', one_line(why + ': ' + ' | '.join(tail)))
            done_ids.add(started)
        elif not finished:
            tail = open(log_file, errors='replace').read().strip().splitlines()[-5:]
            if not any(i in done_ids for i in remaining):
                # died before the first case: nothing will ever run
                for i in remaining:
                    results[i] = ('crash', one_line(f'the worker did not start (exit {p.returncode}): ' +
                                                    ' | '.join(tail)))
                break
        remaining = [i for i in remaining if i not in done_ids]
    with open(a.results, 'w') as f:
        for cid in ids:
            st, detail = results.get(cid, ('crash', 'no result'))
            f.write(f'{cid}\t{st}\t{detail}\n')
        # fixture lines (setUpClass errors and the like)
        for cid, (st, detail) in results.items():
            if cid not in set(ids):
                f.write(f'{cid}\t{st}\t{detail}\n')
    print(f'rdma_core_run: {len(ids)} cases in {time.time() - t0:.0f} s, {nworker} worker(s)', file=sys.stderr)
    return 0


def summary(a):
    rows = []
    for ln in open(a.results, errors='replace'):
        parts = ln.rstrip('\n').split('\t')
        if len(parts) >= 2:
            rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ''))
    per_mod = collections.OrderedDict()
    total = collections.Counter()
    reasons = {'fail': collections.Counter(), 'skip': collections.Counter()}
    for cid, st, detail in rows:
        m = cid.split('.')[1] if cid.startswith('tests.') and cid.count('.') >= 2 else cid.split(' ')[0]
        per_mod.setdefault(m, collections.Counter())[st] += 1
        total[st] += 1
        if st in ('fail', 'error', 'crash', 'timeout'):
            reasons['fail'][re.sub(r'0x[0-9a-f]+|\d+', 'N', detail)[:160]] += 1
        elif st == 'skip':
            reasons['skip'][re.sub(r'0x[0-9a-f]+', 'N', detail)[:160]] += 1
    cols = ['pass', 'fail', 'error', 'crash', 'timeout', 'skip', 'xfail', 'xpass']
    print(f'{"module":<28}' + ''.join(f'{c:>8}' for c in cols) + f'{"total":>8}')
    for m, c in per_mod.items():
        print(f'{m:<28}' + ''.join(f'{c[k]:>8}' for k in cols) + f'{sum(c.values()):>8}')
    print(f'{"TOTAL":<28}' + ''.join(f'{total[k]:>8}' for k in cols) + f'{sum(total.values()):>8}')
    for kind, title in (('fail', 'failures (fail/error/crash/timeout)'), ('skip', 'skips')):
        if reasons[kind]:
            print(f'\nmain reasons of {title}:')
            for r, n in reasons[kind].most_common(12):
                print(f'  {n:4d}  {r}')
    rc = 0
    if a.expected:
        status = {cid: st for cid, st, _ in rows}
        exp = [ln.split('#')[0].strip() for ln in open(a.expected)]
        exp = [e for e in exp if e]
        missing = [e for e in exp if status.get(e) != 'pass']
        newly = sorted(cid for cid, st, _ in rows if st == 'pass' and cid not in set(exp))
        print(f'\nexpected to pass: {len(exp)}, of which {len(exp) - len(missing)} passed')
        for e in missing:
            print(f'  EXPECTED PASS, GOT {status.get(e, "no result")}: {e}')
        if newly:
            print(f'{len(newly)} cases pass that the list does not name (add them to {os.path.basename(a.expected)}):')
            for cid in newly:
                print(f'  NEW PASS: {cid}')
        rc = 1 if missing else 0
    # the closing line ctest-like runners read
    fails = total['fail'] + total['error'] + total['crash'] + total['timeout']
    print(f'\nrdma-core tests: {total["pass"]} passed, {fails} failed, {total["skip"]} skipped')
    return rc


def main():
    argv = sys.argv[1:]
    rest = []
    if '--' in argv:
        i = argv.index('--')
        argv, rest = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--driver', action='store_true')
    ap.add_argument('--worker', action='store_true')
    ap.add_argument('--summary', action='store_true')
    ap.add_argument('--tests')
    ap.add_argument('--work')
    ap.add_argument('--results')
    ap.add_argument('--expected')
    ap.add_argument('--ids')
    ap.add_argument('--out')
    ap.add_argument('--filter')
    ap.add_argument('--python', default='/usr/bin/python3')
    ap.add_argument('--case-timeout', type=int, default=60)
    ap.add_argument('--arg', dest='args', action='append', default=[],
                    help='an argument for rdma-core\'s args_parser (e.g. --arg=--dev --arg=NAME)')
    a = ap.parse_args(argv)
    if a.list:
        a.args += rest
        for t in _import_tests(a.tests, a.args):
            print(t.id())
        return 0
    if a.worker:
        a.args += rest
        return worker(a)
    if a.driver:
        if not rest:
            rest = []
        return driver(a, rest)
    if a.summary:
        return summary(a)
    ap.error('one of --list --driver --worker --summary')


if __name__ == '__main__':
    sys.exit(main())
