#!/usr/bin/env python3
"""bench/ratios.py RUN_DIR [RUN_DIR...] - issue 9's ratios from anchors.sh runs.

Reads each run's results.tsv (written by ../shared/bench/anchors.sh with
SUT_EXTRA=bench/portcullis-sut.sh) and prints, per target of issue 9, the
Portcullis figure, the better of HAProxy and NGINX in the same run, the
ratio, the target and whether it is met. Markdown, for bench/RESULTS.md.
"""
import os
import sys

# (workload, metric as anchors.sh names it, better is "higher"|"lower", target ratio, label)
TARGETS = [
    ("W1", "full TLS handshakes/s, RSA-2048", "higher", 1.15, "W1 RSA-2048 full handshakes/s"),
    ("W1", "proxy-core CPU us/handshake, RSA-2048", "lower", None, "W1 RSA-2048 proxy-core µs/handshake"),
    ("W1", "proxy-core CPU us/handshake, ECDSA-P256", "lower", 0.8, "W1 ECDSA P-256 proxy-core µs/handshake"),
    ("W2", "proxy-core CPU us/request", "lower", 0.6, "W2 proxy-core µs/keep-alive request"),
    ("W3", "download: proxy-core CPU ms/GiB", "lower", 0.6, "W3 offload proxy-core ms/GiB"),
    ("W4", "download: proxy-core CPU ms/GiB", "lower", 0.5, "W4 pass-through (TLS download) proxy-core ms/GiB"),
    ("W4", "iperf3 proxy-core CPU ms/GiB", "lower", 0.5, "W4 pass-through (iperf3) proxy-core ms/GiB"),
    ("W5", "KB RSS per idle TLS conn (after handshake)", "lower", 0.5, "W5 KB RSS per idle TLS connection"),
    ("W5", "KB RSS per TLS conn (after 1 req, keep-alive)", "lower", None, "W5 KB RSS per connection after 1 request"),
    ("W6", "failed handshakes/requests during run", "zero", None, "W6 failed handshakes during rotation"),
]


def load(run):
    vals = {}
    with open(os.path.join(run, "results.tsv")) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 4:
                continue
            try:
                vals[(cols[0], cols[1], cols[2])] = float(cols[3])
            except ValueError:
                pass
    return vals


def main(runs):
    for run in runs:
        v = load(run)
        print(f"\n**{os.path.basename(os.path.normpath(run))}**\n")
        print("| figure | portcullis | haproxy | nginx | ratio to the better peer | target | met |")
        print("|---|---|---|---|---|---|---|")
        for w, metric, better, target, label in TARGETS:
            sut = v.get((w, "sut", metric))
            ha = v.get((w, "haproxy", metric))
            ng = v.get((w, "nginx", metric))
            if sut is None or ha is None or ng is None:
                print(f"| {label} | {sut} | {ha} | {ng} | - | - | not measured |")
                continue
            if better == "zero":
                met = "yes" if sut == 0 else "no"
                print(f"| {label} | {sut:g} | {ha:g} | {ng:g} | - | 0 | {met} |")
                continue
            best = max(ha, ng) if better == "higher" else min(ha, ng)
            ratio = sut / best if best else float("nan")
            if target is None:
                met, tgt = "-", "-"
            else:
                ok = ratio >= target if better == "higher" else ratio <= target
                met, tgt = ("yes" if ok else "no"), ("≥ " if better == "higher" else "≤ ") + f"{target:g}×"
            print(f"| {label} | {sut:g} | {ha:g} | {ng:g} | {ratio:.2f}× | {tgt} | {met} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
