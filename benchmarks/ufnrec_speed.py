"""Seconds per epoch of UFNRecTrainer against plain SASRec training with the same negatives (uniform, K per
position, BCE), epochs interleaved in one run, and the peak size of UFNRec's mining state (record + sparse
placement counts). Mining starts at epoch 0 and m = 1, so reversals, the consistency term and the teacher's
extra forward pass are all present from the third epoch on; those epochs are the ones compared.
"""

import argparse
import statistics
import time

from benchmarks._common import RunLog, add_common_args, markdown_table, resolve_out, set_threads, use_scratch_dir, write_result

import recbole_negs  # noqa: F401
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.quick_start import prepare_run

STEADY_FROM = 2  # the first epoch with reversed entries (m = 1: placed from the record twice)


def prepare(overrides, dataset, negatives):
    config = NegsConfig(model="SASRec", dataset=dataset, config_dict={
        "method": "ufnrec", "neg_sample_num": negatives, "show_progress": False, "state": "INFO", "seed": 0,
        "epochs": 1000, **overrides})
    _, _, train_data, _, _, trainer = prepare_run(config)
    trainer.on_train_start(train_data)
    return {"trainer": trainer, "data": train_data, "seconds": [], "state_mb": []}


def time_epoch(run, epoch):
    trainer = run["trainer"]
    start = time.perf_counter()
    trainer._train_epoch(run["data"], epoch)
    trainer.sampler.on_epoch_end(epoch, trainer)
    run["seconds"].append(time.perf_counter() - start)
    if hasattr(trainer, "miner"):
        stats = trainer.epoch_statistics()
        run["state_mb"].append(stats["state_mb"])
        run.setdefault("reversed", []).append(stats["reversed"])


def main():
    parser = add_common_args(argparse.ArgumentParser(description=__doc__), "ufnrec_speed", 1, 6)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--negatives", type=int, default=100, help="K per position (the code's 100)")
    args = parser.parse_args()
    epochs = 3 if args.quick else max(args.epochs, STEADY_FROM + 1)
    out = resolve_out(args, "ufnrec_speed")
    set_threads(args.threads)
    use_scratch_dir(args.workdir)
    RunLog.install()

    runs = {
        "SASRec, uniform K + BCE (NegsTrainer)": prepare({"trainer": "negs"}, args.dataset, args.negatives),
        "UFNRec (m = 1, mining from epoch 0)": prepare({"ufn_warmup_epochs": 0, "ufn_reverse_threshold": 1},
                                                        args.dataset, args.negatives),
    }
    for epoch in range(epochs):
        for run in runs.values():
            time_epoch(run, epoch)
    plain, ufn = runs.values()
    reference = statistics.median(plain["seconds"][STEADY_FROM:])
    rows = []
    for label, run in runs.items():
        steady = statistics.median(run["seconds"][STEADY_FROM:])
        rows.append((label, f"{steady:.2f}", f"{steady / reference:.2f}x",
                     f"{max(run['state_mb']):.1f}" if run["state_mb"] else "-",
                     ", ".join(str(int(r)) for r in run.get("reversed", [])) or "-"))
    body = (f"SASRec on ml-100k with `--method=ufnrec`'s settings (hidden 50, 2 blocks, 1 head, dropout 0.5, L 50, "
            f"last window, 128 users per batch), K = {args.negatives} uniform negatives per position, BCE; "
            f"{epochs} epochs each, interleaved; s / epoch is the median over epochs {STEADY_FROM}.."
            f"{epochs - 1} (epoch-end work included).\n\n"
            + markdown_table(["training", "s / epoch", "ratio", "peak mining state (MB)", "reversed per epoch"],
                             rows))
    write_result(out or "ufnrec_speed.md", "UFNRec speed and mining state", body)


if __name__ == "__main__":
    main()
