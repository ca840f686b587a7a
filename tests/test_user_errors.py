"""Every mistake a RecBole user makes ends in one line, ``recbole-negs: error: ...`` with exit code 2 and no
traceback, before training (before the data is read where the check needs no data); settings that another
setting cancels are warned about in the run's log. The command line is called in-process (``cli.main``) on a
tiny dataset; a few cases go through a real subprocess to show that nothing else reaches the terminal."""

import glob
import os
import socket
import random
import re
import subprocess
import sys

import pytest
import torch

from recbole_negs import cli, run_recbole_negs
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.config.user_checks import known_keys
from recbole_negs.errors import ConfigError
from recbole_negs.run_log import effective_settings, init_logger

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = ["--epochs=1", "--show_progress=False", "--state=ERROR", "--embedding_size=8", "--train_batch_size=512"]


def write_inter(root, name, header="user_id:token\titem_id:token\ttimestamp:float", rows=None):
    """``<root>/<name>/<name>.inter``: by default 30 users with 8 distinct items each out of 40."""
    if rows is None:
        rng = random.Random(0)
        rows = [f"{u}\t{i}\t{t}" for u in range(1, 31) for t, i in enumerate(rng.sample(range(1, 41), 8))]
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    text = "" if header is None else header + "\n" + "".join(row + "\n" for row in rows)
    (folder / f"{name}.inter").write_text(text)
    return str(root)


def run_cli(capsys, *args):
    """(exit code, stderr) of the command line run in this process; a later --key=value replaces an earlier one
    (the command line itself refuses a key given twice)."""
    settings = {}
    for arg in args:
        settings[arg.split("=", 1)[0] if arg.startswith("--") else arg] = arg
    code = cli.main(list(settings.values()))
    return code, capsys.readouterr().err


def one_error_line(code, err, *fragments):
    """Exit code 2, one ``recbole-negs: error:`` line holding every fragment, and no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("recbole-negs: error: ")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def tiny(in_tmp):
    """A tiny dataset named 'tiny' under <tmp>/data, and the arguments that select it."""
    root = write_inter(in_tmp / "data", "tiny")
    return ["--dataset=tiny", f"--data_path={root}", *QUIET]


# --- the command line

def test_unknown_model_is_one_line_with_no_lightgbm_traceback(in_tmp):
    """RecBole's get_model ends in exlib_recommender, whose import needs lightgbm: the name is checked first."""
    done = subprocess.run([sys.executable, os.path.join(REPO, "run_recbole_negs.py"), "--model=NoSuchModel"],
                          cwd=in_tmp, capture_output=True, text=True, timeout=300)
    one_error_line(done.returncode, done.stderr, "model 'NoSuchModel' is not a RecBole model")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert list(in_tmp.iterdir()) == []


def test_model_names_are_case_sensitive_and_close_names_are_offered(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--model=sasrec"), "'sasrec'", "did you mean 'SASRec'")
    one_error_line(*run_cli(capsys, "--model=LightGC"), "did you mean 'LightGCN'")


def test_missing_config_file(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--config_files=nothere.yaml"), "config file 'nothere.yaml'", "does not exist")


def test_malformed_yaml_names_the_file_and_line(capsys, in_tmp):
    (in_tmp / "bad.yaml").write_text("epochs: 1\nsampler: [dns\n")
    one_error_line(*run_cli(capsys, "--config_files=bad.yaml"), "config file 'bad.yaml' is not valid YAML",
                   "line 2")


def test_config_file_that_is_not_a_mapping(capsys, in_tmp):
    (in_tmp / "list.yaml").write_text("- epochs\n- 3\n")
    one_error_line(*run_cli(capsys, "--config_files=list.yaml"), "'list.yaml' holds a list")


def test_empty_config_file_is_accepted():
    """An empty YAML sets nothing; RecBole's own reader fails on it (dict.update(None))."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        path = f.name
    try:
        config = NegsConfig("BPR", "ml-100k", config_file_list=[path])
        assert config["sampler"] == "uniform"
    finally:
        os.remove(path)


def test_same_key_twice_on_the_command_line(capsys, in_tmp):
    code = cli.main(["--epochs=1", "--epochs=2"])
    one_error_line(code, capsys.readouterr().err, "'--epochs' is given twice", "'1'", "'2'")


def test_setting_without_equals_sign(capsys, in_tmp):
    """RecBole reads only --key=value and drops '--epochs 3' with a warning hidden in the log."""
    code = cli.main(["--epochs", "3"])
    one_error_line(code, capsys.readouterr().err, "'--epochs 3' has no '='", "--epochs=3")
    one_error_line(*run_cli(capsys, "stray"), "'stray' is not a --key=value pair")


@pytest.mark.parametrize("argument,suggestion", [("--samplr=dns", "--sampler"), ("--epoch=1", "--epochs"),
                                                 ("--learning_rte=0.1", "--learning_rate"),
                                                 ("--genni_betta=0.5", "--genni_beta")])
def test_misspelt_command_line_key_is_refused_with_a_suggestion(argument, suggestion, capsys, in_tmp):
    """Both the plugin's keys and RecBole's own: a misspelt key used to be ignored (300 epochs, uniform)."""
    line = one_error_line(*run_cli(capsys, argument), f"'{argument.split('=')[0]}' is not a RecBole or "
                          "recbole-negs key", f"did you mean '{suggestion}'")
    assert "key table" in line


def test_recbole_model_and_dataset_keys_are_known():
    for key in ("epochs", "learning_rate", "hidden_size", "n_layers", "MAX_ITEM_LIST_LENGTH", "load_col",
                "user_inter_num_interval", "sampler", "genni_beta", "ufn_lambda", "nproc", "gpu_id"):
        assert key in known_keys()


def test_every_key_recbole_reads_in_its_code_is_known():
    """The keys RecBole's code reads as config["..."] (some have no default in any YAML file): a newer RecBole
    with a new key shows up here instead of as a refused command line."""
    import recbole

    root = os.path.dirname(recbole.__file__)
    read = set()
    for path in glob.glob(os.path.join(root, "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            read |= set(re.findall(r'config\[\s*["\'](\w+)["\']\s*\]', f.read()))
    assert read - known_keys() == set()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_nproc_below_one(value, capsys, in_tmp):
    one_error_line(*run_cli(capsys, f"--nproc={value}"), "'--nproc'", "int >= 1")


def test_nproc_not_a_number_is_one_line(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--nproc=two"), "--nproc", "'two'")


def test_help_names_the_program_and_the_names_and_the_key_table(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/recbole-negs"])
    with pytest.raises(SystemExit) as stop:
        cli.main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: recbole-negs --model=")
    for name in ("genni", "srns", "soft_bpr", "sampled_softmax", "ufnrec", "pdns", "key table", "docs/checks.md"):
        assert name in out
    monkeypatch.setattr(sys, "argv", ["run_recbole_negs.py"])
    assert cli.program_name() == "python run_recbole_negs.py"


# --- model and dataset from config files

def test_dataset_and_model_in_a_config_file_beat_the_defaults(in_tmp):
    """The CLI's defaults (BPR, ml-100k) are no setting of the user's: a file's dataset: and model: win."""
    (in_tmp / "mine.yaml").write_text("dataset: tiny\nmodel: SASRec\n")
    args, _ = cli.parse(["--config_files=mine.yaml"])
    assert cli.resolve(args)[:2] == ("SASRec", "tiny")
    args, _ = cli.parse(["--config_files=mine.yaml", "--dataset=other", "--model=BPR"])
    assert cli.resolve(args)[:2] == ("BPR", "other")
    args, _ = cli.parse([])
    assert cli.resolve(args)[:2] == ("BPR", "ml-100k")


def test_dataset_from_a_config_file_is_the_one_trained(tiny, capsys, in_tmp):
    (in_tmp / "mine.yaml").write_text(f"dataset: tiny\ndata_path: {in_tmp / 'data'}\n")
    code, err = run_cli(capsys, "--config_files=mine.yaml", *QUIET)
    assert code == 0, err
    (log,) = glob.glob(str(in_tmp / "log" / "BPR" / "BPR-tiny-*.log"))


# --- the dataset's files

def test_unknown_dataset_says_where_to_put_the_files(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--dataset=nosuchdataset"), "dataset 'nosuchdataset' not found",
                   os.path.join(str(in_tmp), "dataset", "nosuchdataset"), "nosuchdataset.inter", "data_path")
    assert not (in_tmp / "dataset").exists()


@pytest.mark.parametrize("case,header,rows,fragments", [
    ("empty", None, [], ["is empty", "header"]),
    ("header_only", "user_id:token\titem_id:token\ttimestamp:float", [], ["has a header but no interactions"]),
    ("no_item", "user_id:token\ttimestamp:float", ["1\t1", "2\t2"], ["has no column 'item_id'", "ITEM_ID_FIELD"]),
    ("commas", "user_id:token,item_id:token", ["1,1", "2,2"], ["header field", "field_separator"]),
    ("no_type", "user_id\titem_id", ["1\t1", "2\t2"], ["header field 'user_id' is not name:type"]),
])
def test_unusable_inter_file(case, header, rows, fragments, capsys, in_tmp):
    root = write_inter(in_tmp / "data", case, header=header, rows=rows)
    one_error_line(*run_cli(capsys, f"--dataset={case}", f"--data_path={root}"), f"{case}.inter", *fragments)


def test_dataset_folder_without_its_inter_file(capsys, in_tmp):
    root = write_inter(in_tmp / "data", "tiny")
    os.rename(os.path.join(root, "tiny", "tiny.inter"), os.path.join(root, "tiny", "other.inter"))
    one_error_line(*run_cli(capsys, "--dataset=tiny", f"--data_path={root}"), "has no 'tiny.inter'", "other.inter")


def test_non_numeric_float_value_names_file_line_and_value(capsys, in_tmp):
    rows = [f"{u}\t{i}\t{'soon' if (u, i) == (2, 3) else i}" for u in range(1, 6) for i in range(1, 6)]
    root = write_inter(in_tmp / "data", "words", rows=rows)
    one_error_line(*run_cli(capsys, "--dataset=words", f"--data_path={root}", "--model=SASRec",
                            "--load_col={'inter':['user_id','item_id','timestamp']}", *QUIET),
                   "words.inter' line 9", "'timestamp:float'", "'soon'")
    assert not glob.glob(str(in_tmp / "saved" / "*.pth"))


# --- checkpoints

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A BPR run of one epoch on the tiny dataset: (folder, its "last" checkpoint)."""
    folder = tmp_path_factory.mktemp("trained")
    root = write_inter(folder / "data", "tiny")
    here = os.getcwd()
    os.chdir(folder)
    try:
        result = run_recbole_negs(model="BPR", dataset="tiny", config_dict={
            "data_path": root, "epochs": 1, "show_progress": False, "state": "ERROR", "embedding_size": 8,
            "checkpoint_dir": str(folder / "saved")})
    finally:
        os.chdir(here)
    (last,) = glob.glob(str(folder / "saved" / "*-last.pth"))
    return folder, last, result


def test_result_is_plain_floats(checkpoint):
    _, _, result = checkpoint
    assert type(result) is dict and type(result["test_result"]) is dict
    assert all(type(v) is float for v in list(result["test_result"].values()) + [result["best_valid_score"]])


def _bad_file(in_tmp, checkpoint, kind):
    path = in_tmp / f"{kind}.pth"
    if kind == "random":
        path.write_bytes(random.Random(1).randbytes(4000))
    elif kind == "truncated":
        with open(checkpoint[1], "rb") as f:
            path.write_bytes(f.read()[:3000])
    elif kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "weights_only":
        torch.save({"user_embedding.weight": torch.zeros(2, 2)}, path)
    return str(path)


@pytest.mark.parametrize("kind,fragment", [("random", "is not a readable checkpoint"),
                                           ("truncated", "is not a readable checkpoint"),
                                           ("text", "is not a readable checkpoint"),
                                           ("weights_only", "is not a RecBole training checkpoint")])
def test_unreadable_checkpoint_is_refused_before_the_data_is_read(kind, fragment, checkpoint, tiny, capsys,
                                                                  in_tmp, monkeypatch):
    path = _bad_file(in_tmp, checkpoint, kind)
    read = []
    monkeypatch.setattr("recbole_negs.atomic_files.create_dataset", lambda config: read.append(1))
    one_error_line(*run_cli(capsys, *tiny, f"--checkpoint_file={path}"), "'checkpoint_file'", f"{kind}.pth",
                   fragment, "saved/*.pth")
    assert read == []


def test_checkpoint_of_another_model_is_refused(checkpoint, tiny, capsys, in_tmp):
    """A BPR checkpoint into LightGCN used to warn once and then train from BPR's weights."""
    one_error_line(*run_cli(capsys, *tiny, "--model=LightGCN", f"--checkpoint_file={checkpoint[1]}"),
                   "was written for model 'BPR'", "this run trains 'LightGCN'", "--model=BPR")


def test_checkpoint_of_another_size_is_refused_before_any_epoch(checkpoint, tiny, capsys, in_tmp):
    one_error_line(*run_cli(capsys, *tiny, "--embedding_size=16", f"--checkpoint_file={checkpoint[1]}"),
                   "does not fit the model built for this run", "'user_embedding.weight' is [31, 8] in the file "
                   "and [31, 16]", "embedding_size=8")
    assert not glob.glob(str(in_tmp / "saved" / "*.pth")), "no epoch was trained"


def test_checkpoint_of_another_learner_is_refused(checkpoint, tiny, capsys, in_tmp):
    one_error_line(*run_cli(capsys, *tiny, "--learner=sgd", f"--checkpoint_file={checkpoint[1]}"),
                   "optimizer 'adam'", "--learner=adam")


def test_a_fitting_checkpoint_resumes(checkpoint, tiny, capsys, in_tmp):
    code, err = run_cli(capsys, *tiny, "--epochs=2", f"--checkpoint_file={checkpoint[1]}")
    assert code == 0, err


def _unwritable_folder(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return str(folder)
    try:  # root writes anywhere chmod allows; /sys is a read-only mount in containers
        open("/sys/.recbole-negs-test", "wb").close()
    except OSError:
        return "/sys/checkpoints"
    pytest.skip("no read-only folder on this machine")


def test_read_only_checkpoint_dir_is_refused_before_the_data_is_read(tiny, capsys, in_tmp, monkeypatch):
    read = []
    monkeypatch.setattr("recbole_negs.atomic_files.create_dataset", lambda config: read.append(1))
    folder = _unwritable_folder(in_tmp)
    one_error_line(*run_cli(capsys, *tiny, f"--checkpoint_dir={folder}"), "'checkpoint_dir'", folder,
                   "not writable")
    (in_tmp / "a_file").write_text("")
    one_error_line(*run_cli(capsys, *tiny, "--checkpoint_dir=a_file/saved"), "'checkpoint_dir'",
                   "is not a folder")
    assert read == []


def test_checkpoint_dir_is_checked_again_when_the_trainer_makes_it(in_tmp):
    """The trainer makes the folder before the first epoch; a folder that cannot be made is a ConfigError."""
    from recbole_negs.trainers.checkpoint import check_checkpoint_dir

    (in_tmp / "a_file").write_text("")
    with pytest.raises(ConfigError, match="cannot be created"):
        check_checkpoint_dir(str(in_tmp / "a_file" / "saved"), create=True)


# --- settings that other settings cancel

def _config(**settings):
    return NegsConfig("BPR", "ml-100k", config_dict={"state": "ERROR", **settings})


def test_sampler_none_warns_that_k_is_ignored():
    notes = _config(sampler="none", neg_sample_num=4).negs_warnings
    assert len(notes) == 1 and notes[0].startswith("neg_sample_num is ignored with sampler: none")


def test_a_samplers_key_with_another_sampler_is_warned():
    notes = _config(sampler="dns", genni_beta=0.5).negs_warnings
    assert notes == ["genni_beta is ignored: it belongs to sampler 'genni', and sampler is 'dns'"]
    assert _config(sampler="genni", genni_beta=0.5).negs_warnings == []
    assert _config(method="pdns").negs_warnings == [], "a preset's own keys are not the user's"


def test_recbole_negatives_and_loss_type_replaced_by_a_plugin_sampler_are_named():
    notes = _config(sampler="uniform", loss_type="BPR",
                    train_neg_sample_args={"distribution": "popularity", "sample_num": 4}).negs_warnings
    assert any(n.startswith("RecBole's loss_type = 'BPR' is not used") for n in notes)
    (neg,) = [n for n in notes if n.startswith("RecBole's train_neg_sample_args")]
    assert "sampler: popularity and neg_sample_num: 4" in neg


def test_ufnrec_with_another_loss_is_refused(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--model=SASRec", "--method=ufnrec", "--loss=bpr"),
                   "'loss' = 'bpr'", "trainer 'ufnrec'", "BCE")


def test_warnings_and_effective_settings_reach_the_log_once(tiny, in_tmp):
    """A real command line (pytest's own log handler would keep RecBole's file handler out)."""
    args = [a for a in tiny if not a.startswith("--state")] + ["--sampler=dns", "--genni_beta=0.5"]
    done = subprocess.run([sys.executable, os.path.join(REPO, "run_recbole_negs.py"), *args],
                          cwd=in_tmp, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "recbole-negs: warning: genni_beta is ignored" in done.stderr
    (log,) = glob.glob(str(in_tmp / "log" / "BPR" / "*.log"))
    text = open(log).read()
    assert text.count("recbole-negs: sampler=dns loss=bpr K=1 neg_exclude=history") == 1
    assert text.count("recbole-negs: warning: genni_beta is ignored") == 1


def test_effective_settings_show_a_samplers_own_defaults():
    """GenNi's file sets loss bce and neg_exclude target, not overall.yaml's bpr and history."""
    line = effective_settings(_config(sampler="genni"))
    assert "sampler=genni loss=bce K=1 neg_exclude=target" in line


def test_two_runs_in_the_same_second_get_two_log_files(in_tmp, monkeypatch):
    monkeypatch.setattr("recbole.utils.logger.logging.basicConfig", lambda **kwargs: None)  # keep pytest's root
    config = _config()
    init_logger(config)
    init_logger(config)
    assert len(glob.glob(str(in_tmp / "log" / "BPR" / "*.log"))) == 2


# --- errors from spawned processes

def test_a_user_error_inside_a_spawned_process_is_one_line():
    wrapped = ("\n\n-- Process 0 terminated with the following error:\nTraceback (most recent call last):\n"
               '  File "x.py", line 1, in f\nrecbole_negs.errors.DataError: some users have interacted with '
               "every item\n")
    assert cli._user_error_from_process(Exception(wrapped)) == "some users have interacted with every item"
    assert cli._user_error_from_process(Exception("something else")) is None


@pytest.mark.slow
def test_two_processes_return_plain_floats(in_tmp):
    root = write_inter(in_tmp / "data", "tiny")
    with socket.socket() as probe:  # a port nothing else holds (a fixed one can sit in TIME_WAIT)
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    result = run_recbole_negs(model="BPR", dataset="tiny", nproc=2, port=str(port),
                              config_dict={"data_path": root, "epochs": 1, "show_progress": False,
                                           "state": "ERROR", "embedding_size": 8})
    assert type(result) is dict and type(result["test_result"]) is dict
    assert all(type(v) is float for v in result["test_result"].values())


# --- more of the command line and the files

def test_value_with_a_second_equals_sign(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--eval_args=a=b"), "'--eval_args=a=b' has a second '='", "config_files")


def test_config_file_that_is_a_folder_or_not_text(capsys, in_tmp):
    (in_tmp / "folder.yaml").mkdir()
    one_error_line(*run_cli(capsys, "--config_files=folder.yaml"), "'folder.yaml' is a folder")
    (in_tmp / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81")
    one_error_line(*run_cli(capsys, "--config_files=binary.yaml"), "'binary.yaml' is not UTF-8 text")


def test_exlib_model_without_its_package(capsys, in_tmp):
    import importlib.util

    if importlib.util.find_spec("lightgbm") is not None:
        pytest.skip("lightgbm is installed here")
    one_error_line(*run_cli(capsys, "--model=LightGBM"), "needs the 'lightgbm' package", "pip install lightgbm")


def test_unknown_dataset_offers_close_recbole_names(capsys, in_tmp):
    one_error_line(*run_cli(capsys, "--dataset=ml-1mm"), "close RecBole names: ml-1m")


def test_benchmark_files_are_looked_for(capsys, in_tmp):
    root = write_inter(in_tmp / "data", "tiny")
    one_error_line(*run_cli(capsys, "--dataset=tiny", f"--data_path={root}", "--benchmark_filename=['train','test']"),
                   "has no 'tiny.train.inter'", "tiny.inter")


def test_full_softmax_warns_that_nothing_is_drawn():
    notes = _config(loss="full_softmax", neg_sample_num=8).negs_warnings
    assert notes == ["neg_sample_num is ignored with loss: full_softmax, which draws no negatives and trains "
                     "against every item"]


def test_config_errors_of_a_multi_process_run_are_one_line(capsys, in_tmp):
    """Checked once before the processes start (not one traceback per process)."""
    one_error_line(*run_cli(capsys, "--nproc=2", "--sampler=bogus"), "'sampler' = 'bogus'")
    one_error_line(*run_cli(capsys, "--nproc=2", "--dataset=nosuchdataset"), "dataset 'nosuchdataset' not found")
