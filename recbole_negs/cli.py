"""Command line in RecBole's style: --model --dataset --config_files, and any --key=value for the config."""

import argparse
import sys

from recbole_negs.errors import ConfigError, DataError, TrainingError

USAGE = """python run_recbole_negs.py --model=SASRec [--dataset=ml-100k] [--sampler=uniform] [--loss=bpr]
       [--trainer=negs] [--method=genni] [--config_files="a.yaml b.yaml"] [--any_recbole_key=value ...]"""


def parse(argv):
    parser = argparse.ArgumentParser(prog="run_recbole_negs.py", usage=USAGE, add_help=True)
    parser.add_argument("--model", "-m", default="BPR", help="RecBole model name (default: BPR, as RecBole)")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name (default: ml-100k, ships "
                        "with recbole)")
    parser.add_argument("--config_files", default=None, help="space-separated YAML files, later ones win")
    parser.add_argument("--nproc", type=int, default=1, help="processes on RecBole's distributed path (gloo on "
                        "CPU, nccl on GPUs)")
    parser.add_argument("--ip", default="localhost")
    parser.add_argument("--port", default="5678")
    parser.add_argument("--world_size", type=int, default=-1)
    parser.add_argument("--group_offset", type=int, default=0)
    args, _ = parser.parse_known_args(argv)
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    files = args.config_files.strip().split(" ") if args.config_files else None
    from recbole_negs.quick_start import run_recbole_negs

    try:
        run_recbole_negs(model=args.model, dataset=args.dataset, config_file_list=files, nproc=args.nproc,
                         world_size=args.world_size, ip=args.ip, port=args.port, group_offset=args.group_offset)
    except (ConfigError, DataError, TrainingError) as error:
        print(f"recbole-negs: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
