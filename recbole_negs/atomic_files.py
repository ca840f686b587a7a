"""The dataset's atomic files, checked before RecBole reads them: a missing dataset folder, an empty or
header-only ``.inter``, a header RecBole cannot parse, a missing user or item column; and, when RecBole's own
read fails, the line and value that made it fail. RecBole would stop on each with a traceback (a KeyError, "not
enough values to unpack", "Some feat is empty") or, for an unknown name, try to download it."""

import os

import yaml

from recbole_negs.errors import DataError

FEATURE_TYPES = ("token", "token_seq", "float", "float_seq")
FORMAT = ("an atomic file is tab-separated (field_separator), starts with a header such as "
          "'user_id:token<TAB>item_id:token<TAB>timestamp:float' and has one interaction per line")


def _downloadable(name):
    import recbole

    path = os.path.join(os.path.dirname(recbole.__file__), "properties", "dataset", "url.yaml")
    with open(path, "r", encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def inter_files(config):
    """The interaction files RecBole will read: ``<name>.inter``, or ``<name>.<part>.inter`` per
    benchmark_filename."""
    folder, name = config["data_path"], config["dataset"]
    parts = config["benchmark_filename"]
    if parts:
        return [os.path.join(folder, f"{name}.{part}.inter") for part in parts]
    return [os.path.join(folder, f"{name}.inter")]


def check_dataset_files(config):
    """Everything about the dataset that can be seen without reading its rows. Raises DataError."""
    folder, name = config["data_path"], config["dataset"]
    if not os.path.isdir(folder):
        urls = _downloadable(name)
        if name in urls:
            return  # RecBole downloads it (it asks first)
        import difflib

        close = difflib.get_close_matches(name, list(urls) + ["ml-100k"], n=3, cutoff=0.6)
        hint = f" (close RecBole names: {', '.join(close)})" if close else ""
        raise DataError(f"dataset '{name}' not found: there is no folder '{os.path.abspath(folder)}' and RecBole has no dataset of "
                        f"that name to download{hint}; put its atomic files there ({name}.inter, optionally "
                        f"{name}.user and {name}.item), or set data_path to the folder that holds '{name}/'")
    required = [config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]]
    eval_args = config["eval_args"] or {}
    if eval_args.get("order") == "TO" and config["TIME_FIELD"]:
        required.append(config["TIME_FIELD"])
    for path in inter_files(config):
        if not os.path.isfile(path):
            present = sorted(f for f in os.listdir(folder) if f.endswith(".inter"))
            found = f" (it holds {', '.join(present)})" if present else ""
            raise DataError(f"dataset folder '{folder}' has no '{os.path.basename(path)}'{found}; RecBole reads "
                            f"<dataset>.inter, so name the file after the dataset")
        check_header(path, config, required)


def check_header(path, config, required):
    separator, encoding = config["field_separator"], config["encoding"] or "utf-8"
    try:
        with open(path, "r", encoding=encoding) as f:
            header = f.readline()
            has_rows = any(line.strip() for line in _first_lines(f, 1000))
    except UnicodeDecodeError:
        raise DataError(f"'{path}' is not {encoding} text (encoding); {FORMAT}") from None
    if not header.strip():
        raise DataError(f"'{path}' is empty; {FORMAT}")
    fields = header.rstrip("\r\n").split(separator)
    names = []
    for field in fields:
        name, colon, kind = field.partition(":")
        if not colon or kind not in FEATURE_TYPES:
            raise DataError(f"'{path}' header field '{field}' is not name:type with type "
                            f"{'|'.join(FEATURE_TYPES)} (field_separator is {separator!r}); {FORMAT}")
        names.append(name)
    missing = [name for name in required if name not in names]
    if missing:
        raise DataError(f"'{path}' has no column '{missing[0]}' (its header: {', '.join(fields)}); RecBole needs "
                        f"the user, item (and with eval order TO, time) columns: rename the header field or set "
                        "USER_ID_FIELD / ITEM_ID_FIELD / TIME_FIELD")
    if not has_rows:
        raise DataError(f"'{path}' has a header but no interactions; {FORMAT}")


def _first_lines(f, n):
    for i, line in enumerate(f):
        if i >= n:
            return
        yield line


def find_bad_number(config):
    """After RecBole's read failed: the first value of a float column that is not a number, as a DataError
    naming the file, line, column and value; None when that is not why it failed."""
    folder, name = config["data_path"], config["dataset"]
    candidates = inter_files(config) + [os.path.join(folder, f"{name}.{suffix}") for suffix in ("user", "item")]
    separator, encoding = config["field_separator"], config["encoding"] or "utf-8"
    for path in candidates:
        if not os.path.isfile(path):
            continue
        with open(path, "r", encoding=encoding) as f:
            fields = f.readline().rstrip("\r\n").split(separator)
            floats = [i for i, field in enumerate(fields) if field.endswith(":float")]
            if not floats:
                continue
            for number, line in enumerate(f, start=2):
                values = line.rstrip("\r\n").split(separator)
                for i in floats:
                    value = values[i] if i < len(values) else ""
                    if value == "":
                        continue
                    try:
                        float(value)
                    except ValueError:
                        return DataError(f"'{path}' line {number}: column '{fields[i]}' holds {value!r}, not a "
                                         "number; fix the value, or declare the column as :token")
    return None


def create_dataset(config):
    """RecBole's create_dataset, with its failures on unreadable values turned into one line."""
    from recbole.data import create_dataset as recbole_create_dataset

    try:
        return recbole_create_dataset(config)
    except (ValueError, TypeError) as error:
        found = find_bad_number(config)
        if found is None:
            raise
        raise found from error
