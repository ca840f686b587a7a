"""Command line in RecBole's style: --model --dataset --config_files, and any --key=value for the config.

Every user mistake ends here as one line, ``recbole-negs: error: ...`` with exit code 2, and no traceback.
"""

import argparse
import os
import re
import sys

from recbole_negs.config.keys import LOSSES, METHODS, SAMPLERS, TRAINERS
from recbole_negs.errors import ConfigError, DataError, TrainingError

USER_ERRORS = (ConfigError, DataError, TrainingError)
DEFAULT_MODEL, DEFAULT_DATASET = "BPR", "ml-100k"
EPILOG = f"""names:
  --sampler  {'|'.join(SAMPLERS)}
  --loss     {'|'.join(LOSSES)}
  --trainer  {'|'.join(TRAINERS)}
  --method   {'|'.join(METHODS)} (a paper's preset)

Every RecBole key works as --key=value (e.g. --epochs=5); the plugin's keys, their defaults and allowed values
are in the README's key table (python -m recbole_negs.config.keys prints it); what is checked: docs/checks.md."""


def program_name():
    """``recbole-negs`` for the console script, ``python run_recbole_negs.py`` for the script."""
    base = os.path.basename(sys.argv[0] or "")
    return f"python {base}" if base.endswith(".py") else "recbole-negs"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """argparse's errors (e.g. --nproc=abc) as the one line every other mistake gets."""
        raise ConfigError(f"command line: {message}")


def build_parser():
    prog = program_name()
    usage = (f"{prog} --model=SASRec [--dataset=ml-100k] [--sampler=uniform] [--loss=bpr] [--method=genni]\n"
             f"       [--config_files=\"a.yaml b.yaml\"] [--nproc=1] [--any_recbole_key=value ...]")
    parser = _Parser(prog=prog, usage=usage, epilog=EPILOG, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Train a RecBole model with recbole-negs' negative samplers and losses.")
    parser.add_argument("--model", "-m", default=None, help=f"RecBole model name (default: {DEFAULT_MODEL}, as "
                        "RecBole; a model: line in a config file counts)")
    parser.add_argument("--dataset", "-d", default=None, help=f"dataset name (default: {DEFAULT_DATASET}, which "
                        "ships with recbole; a dataset: line in a config file counts)")
    parser.add_argument("--config_files", default=None, help="space-separated YAML files, later ones win")
    parser.add_argument("--nproc", type=int, default=1, help="processes on RecBole's distributed path (gloo on "
                        "CPU, nccl on GPUs)")
    parser.add_argument("--ip", default="localhost")
    parser.add_argument("--port", default="5678")
    parser.add_argument("--world_size", type=int, default=-1)
    parser.add_argument("--group_offset", type=int, default=0)
    return parser


OPTION_NAMES = ("model", "dataset", "config_files", "nproc", "ip", "port", "world_size", "group_offset")


def parse(argv):
    """``(args, recbole_argv)``: the parsed options, and the command line as RecBole's Config should read it
    (every setting as --key=value). Raises ConfigError for any malformed, repeated or unknown key."""
    from recbole_negs.config.user_checks import check_command_line_keys, check_nproc, split_command_line

    parser = build_parser()
    options, pairs = split_command_line(argv, OPTION_NAMES)
    if "-h" in argv or "--help" in argv:
        parser.parse_args(["--help"])  # prints the help and exits 0
    args = parser.parse_args([f"--{name}={value}" for name, value in options.items()])
    check_command_line_keys(pairs)
    check_nproc(args.nproc)
    recbole_argv = [f"--{name}={value}" for name, value in list(options.items()) + pairs]
    return args, recbole_argv


def resolve(args):
    """Model, dataset and config files: the command line's value, else a config file's, else the default (a
    default the user never typed must not override a file's ``dataset:``)."""
    from recbole_negs.config.user_checks import read_config_files

    files = args.config_files.split() if args.config_files else None
    _, from_files = read_config_files(files)
    model = args.model or from_files.get("model") or DEFAULT_MODEL
    dataset = args.dataset or from_files.get("dataset") or DEFAULT_DATASET
    return model, str(dataset), files


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    saved_argv = sys.argv
    try:
        args, recbole_argv = parse(argv)
        model, dataset, files = resolve(args)
        # RecBole's Config reads sys.argv itself: it sees exactly the checked settings (and the children of a
        # multi-process run inherit them)
        sys.argv = [saved_argv[0] if saved_argv else "recbole-negs"] + recbole_argv
        from recbole_negs.quick_start import run_recbole_negs

        if args.nproc > 1 or args.world_size > 0:
            _check_before_spawn(model, dataset, files, args)
        run_recbole_negs(model=model, dataset=dataset, config_file_list=files, nproc=args.nproc,
                         world_size=args.world_size, ip=args.ip, port=args.port, group_offset=args.group_offset)
    except USER_ERRORS as error:
        return _report(error)
    except Exception as error:  # a user error raised inside a spawned process arrives wrapped
        message = _user_error_from_process(error)
        if message is None:
            raise
        return _report(message)
    finally:
        sys.argv = saved_argv
    return 0


def _report(error):
    message = " ".join(str(error).split())  # one line, whatever the message holds
    print(f"recbole-negs: error: {message}", file=sys.stderr)
    return 2


def _check_before_spawn(model, dataset, files, args):
    """The config checks once in this process, so a mistake is one line and not one traceback per process."""
    from recbole_negs.config.configurator import NegsConfig

    NegsConfig(model=model, dataset=dataset, config_file_list=files,
               config_dict={"world_size": args.world_size if args.world_size > 0 else args.nproc,
                            "nproc": args.nproc, "ip": args.ip, "port": str(args.port),
                            "offset": args.group_offset})


_WRAPPED = re.compile(r"^recbole_negs\.errors\.(ConfigError|DataError|TrainingError): (.*)$")


def _user_error_from_process(error):
    """torch.multiprocessing re-raises a child's exception as text; find the plugin's error line in it."""
    for line in reversed(str(error).splitlines()):
        found = _WRAPPED.match(line.strip())
        if found:
            return found.group(2)
    return None


if __name__ == "__main__":
    sys.exit(main())
