"""In-memory cherry-pick: will a commit apply cleanly to a branch, and with what tree?

git 2.39 has `merge-tree --write-tree` but not `--merge-base`, so the merge base is forced
with synthetic commits: Pz (the fix's parent tree, no parent), Cz (the fix's tree on Pz) and
Tz (the target's tree on Pz). Merging Tz and Cz is then exactly a cherry-pick of the fix onto
the target. Synthetic commits go to a temporary object directory so the repository is not
bloated; merged trees and blobs go to the repository when the caller will commit them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from bot.engine.git import Git

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class Pick:
    """One cherry-pick to predict: apply commit (against `parent`) onto the tree `onto`."""

    commit: str
    parent: str | None  # None for a root commit
    onto: str  # a commit or tree


@dataclass(frozen=True)
class Prediction:
    clean: bool
    tree: str | None  # the merged tree (also written when there were conflicts)
    conflicts: tuple[str, ...]  # paths


class Predictor:
    """Batch predictions in one repository. Use as a context manager."""

    def __init__(self, git: Git, keep_objects: bool = False) -> None:
        self.git = git
        common = Path(git.out("rev-parse", "--git-common-dir"))
        self.objects = (git.cwd / common / "objects").resolve()
        # Throwaway objects: memory-backed storage when the machine has it.
        shm = Path("/dev/shm")
        where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.tmp = Path(tempfile.mkdtemp(prefix="backportbot-objects-", dir=where))
        self.keep_objects = keep_objects
        self._trees: dict[str, str] = {}
        self._attributes: dict[str, Path | None] = {}

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _git(self) -> Git:
        # keep_objects: merged trees are written to the repository (the caller commits them);
        # otherwise everything new stays in the temporary directory.
        env = ({"GIT_OBJECT_DIRECTORY": str(self.objects), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.tmp)}
               if self.keep_objects else
               {"GIT_OBJECT_DIRECTORY": str(self.tmp), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(self.objects)})
        return self.git.with_env(**env)

    def trees(self, revs: list[str]) -> list[str]:
        """Tree ids of commits (or trees), one `cat-file --batch-check` for all of them."""
        missing = [r for r in dict.fromkeys(revs) if r not in self._trees]
        if missing:
            out = self.git.out("cat-file", "--batch-check=%(objectname)",
                               input="".join(f"{r}^{{tree}}\n" for r in missing))
            for rev, line in zip(missing, out.splitlines(), strict=True):
                if line.endswith("missing"):
                    raise ValueError(f"{rev} does not name a commit or tree")
                self._trees[rev] = line
        return [self._trees[r] for r in revs]

    def _write_commit(self, tree: str, parent: str | None) -> str:
        body = f"tree {tree}\n" + (f"parent {parent}\n" if parent else "")
        body += "author p <p> 0 +0000\ncommitter p <p> 0 +0000\n\np\n"
        data = f"commit {len(body)}\0{body}".encode()
        sha = hashlib.sha1(data).hexdigest()
        path = self.tmp / sha[:2] / sha[2:]
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(zlib.compress(data, 1))
        return sha

    def attributes(self, ontos: list[str]) -> list[Path | None]:
        """Each target's top-level .gitattributes as a file (merge-tree ignores the tree's own),
        shared between targets whose attributes are the same blob."""
        trees = self.trees(ontos)
        out = self.git.out("cat-file", "--batch-check=%(objectname)",
                           input="".join(f"{t}:.gitattributes\n" for t in trees))
        paths: list[Path | None] = []
        for line in out.splitlines():
            blob = line.split()[0]
            if line.endswith("missing"):
                paths.append(None)
                continue
            if blob not in self._attributes:
                path = self.tmp / f"attributes-{blob}"
                path.write_bytes(self.git.raw("cat-file", "blob", blob))
                self._attributes[blob] = path
            paths.append(self._attributes[blob])
        return paths

    def predict(self, picks: list[Pick]) -> list[Prediction]:
        revs = [r for p in picks for r in (p.commit, p.parent or EMPTY_TREE, p.onto)]
        self.trees(revs)
        results: dict[int, Prediction] = {}
        groups: dict[Path | None, list[int]] = {}
        for i, attributes in enumerate(self.attributes([p.onto for p in picks])):
            groups.setdefault(attributes, []).append(i)
        for attributes, indexes in groups.items():
            lines = []
            for i in indexes:
                p = picks[i]
                c_tree, p_tree, t_tree = self.trees([p.commit, p.parent or EMPTY_TREE, p.onto])
                pz = self._write_commit(p_tree, None)
                lines.append(f"{self._write_commit(t_tree, pz)} {self._write_commit(c_tree, pz)}\n")
            config = ["-c", f"core.attributesFile={attributes}"] if attributes else []
            out = self._git().raw(*config, "merge-tree", "--write-tree", "--stdin", "--name-only",
                                            "--no-messages", input="".join(lines).encode())
            for i, pred in zip(indexes, _parse_batch(out), strict=True):
                results[i] = pred
        return [results[i] for i in range(len(picks))]

    def predict_chain(self, commits: list[tuple[str, str | None]], onto: str) -> list[Prediction]:
        """Pick several commits in order; stops at the first conflict."""
        out: list[Prediction] = []
        for commit, parent in commits:
            (pred,) = self.predict([Pick(commit, parent, onto)])
            out.append(pred)
            if not pred.clean or pred.tree is None:
                break
            onto = pred.tree
        return out


def _parse_batch(out: bytes) -> list[Prediction]:
    """`merge-tree --stdin --name-only --no-messages`: status NUL tree NUL (path NUL)* NUL."""
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    preds = []
    i = 0
    while i + 1 < len(fields) and fields[i] != "":
        status, tree = fields[i], fields[i + 1]
        i += 2
        paths = []
        while i < len(fields) and fields[i] != "":
            paths.append(fields[i])
            i += 1
        i += 1  # the empty field that ends this merge
        preds.append(Prediction(status == "1", tree or None, tuple(dict.fromkeys(paths))))
    return preds

