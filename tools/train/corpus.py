"""The training corpus: English prose that Debian packages ship.

* fortunes, fortunes-min: the fortune-mod cookie collections (one cookie per
  document, files split at lines holding a single "%");
* jargon-text: the Jargon File, a glossary of hacker slang in plain prose
  (one glossary entry per document).

Nothing here is committed: the packages are installed (as root, with apt-get)
when missing and read from /usr/share. The split into training and held-out
documents is a fixed function of each document's text (a hash), so it does not
depend on file order or on which package versions add or drop a cookie.
"""

import gzip
import hashlib
import os
import re
import subprocess

FORTUNE_DIR = "/usr/share/games/fortunes"
JARGON_TXT = "/usr/share/doc/jargon-text/jargon.txt.gz"
PACKAGES = ["fortunes", "fortunes-min", "jargon-text"]

# Fortune files left out: pictures made of characters, a file of text in
# other languages, and two collections of jokes about groups of people.
SKIP_FORTUNES = {"ascii-art", "translate-me", "ethnic", "men-women"}

# Documents are separated in the training stream the way fortune files
# separate cookies. The held-out text file uses the same form.
SEPARATOR = "\n%\n"

# Typographic characters of the Jargon File mapped to ASCII, so the byte-level
# vocabulary is not spent on three-byte quotes and dashes.
_ASCII = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
          "\u2014": "--", "\u2013": "-", "\u2026": "...", "\u00a0": " "}


def ensure_packages(log=print):
    missing = [p for p in PACKAGES
               if subprocess.run(["dpkg", "-s", p], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit("corpus: install these Debian packages first: " + " ".join(missing))
    log("corpus: apt-get install " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + missing,
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _fortunes():
    docs = []
    for name in sorted(os.listdir(FORTUNE_DIR)):
        path = os.path.join(FORTUNE_DIR, name)
        if (name.endswith(".dat") or name.endswith(".u8") or name in SKIP_FORTUNES
                or os.path.islink(path) or not os.path.isfile(path)):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            cookie = []
            for line in f:
                if line.rstrip("\n") == "%":
                    docs.append("".join(cookie))
                    cookie = []
                else:
                    cookie.append(line)
            docs.append("".join(cookie))
    return docs


def _jargon():
    """Glossary entries: a line ':term: ...' starts one. The lexicon's
    tables (box-drawing characters) and the front matter are skipped."""
    with gzip.open(JARGON_TXT, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    docs, cur, started = [], [], False
    for line in lines:
        s = line.strip()
        if any("\u2500" <= c <= "\u257f" for c in s):
            continue
        if s.startswith(":") and s.count(":") >= 2 and len(s) > 2:
            started = True
            if cur:
                docs.append("\n".join(cur).strip("\n") + "\n")
            cur = [s]
            continue
        if started:
            cur.append(s)
    if cur:
        docs.append("\n".join(cur).strip("\n") + "\n")
    out = []
    for d in docs:
        for k, v in _ASCII.items():
            d = d.replace(k, v)
        d = _plain_entry(d)
        # paragraphs keep their blank lines; runs of blank lines collapse
        while "\n\n\n" in d:
            d = d.replace("\n\n\n", "\n\n")
        out.append(d)
    return out


def _plain_entry(doc):
    """A glossary entry as plain prose: the headword line ':term: /pron/ n.'
    becomes 'term: n.' and cross-references '{term}' become 'term'. The
    markup is the Jargon File's, not English, and a small model spends its
    capacity (and greedy decoding its turns) on reproducing it."""
    head, _, body = doc.partition("\n")
    m = re.match(r":(.+?):\s*(.*)$", head)
    if m:
        rest = re.sub(r"/[^/]*/,?\s*", "", m.group(2)).strip()
        head = m.group(1) + (": " + rest if rest else ":")
    doc = head + ("\n" + body if body else "")
    return re.sub(r"\{([^{}]*)\}", r"\1", doc)


def _clean(doc):
    doc = doc.replace("\r", "").strip("\n")
    return doc + "\n" if doc.strip() else ""


def load(heldout_per_mille=20, log=print):
    """Returns (train_docs, heldout_docs): lists of strings."""
    ensure_packages(log)
    docs = [_clean(d) for d in _fortunes() + _jargon()]
    docs = [d for d in docs if d and "%" != d.strip()]
    train, held = [], []
    for d in docs:
        h = int.from_bytes(hashlib.sha256(d.encode("utf-8")).digest()[:4], "little")
        (held if h % 1000 < heldout_per_mille else train).append(d)
    log(f"corpus: {len(docs)} documents, {sum(map(len, docs)) / 1e6:.2f} MB; "
        f"held out {len(held)} ({sum(map(len, held)) / 1e3:.0f} kB)")
    return train, held
