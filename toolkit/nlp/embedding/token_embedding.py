"""Pretrained word vectors read from local GloVe, fastText ``.vec`` and word2vec (text or binary) files.

The readers are written here because nothing light does it: gensim would add
a large dependency for three simple formats, and torchtext is retired. They
stream the file (nothing but the kept vectors is held in memory), and stop
with the file name and line (or byte offset) at the first malformed entry.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..vocab import Vocab

__all__ = ["EmbeddingFormatError", "TokenEmbedding"]


class EmbeddingFormatError(ValueError):
    """An embedding file is malformed: wrong dimension, bad number, truncated data, bad header."""


def _parse_header(line: str) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _numbered_lines(f, path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    lineno = 0
    try:
        for lineno, line in enumerate(f, 1):
            yield lineno, line
    except UnicodeDecodeError as e:
        raise EmbeddingFormatError(f"{path}:{lineno + 1}: not {encoding} text ({e}); pass encoding= "
                                   "or unicode_errors='replace'") from None


def _iter_text(path: Path, encoding: str, errors: str, header: bool | None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (token, vector) from a text file: GloVe (no header) or fastText/word2vec (``N D`` header)."""
    dim = None
    expected = None
    count = 0
    with open(path, encoding=encoding, errors=errors, newline="\n") as f:
        for lineno, line in _numbered_lines(f, path, encoding):
            line = line.rstrip("\r\n")
            if lineno == 1:
                found = _parse_header(line)
                if header is True and found is None:
                    raise EmbeddingFormatError(f"{path}:1: expected a '<count> <dim>' header, got {line[:60]!r}")
                if found is not None and header is not False:
                    expected, dim = found
                    if dim <= 0:
                        raise EmbeddingFormatError(f"{path}:1: header gives dimension {dim}")
                    continue
            if not line.strip():
                continue
            if dim is None:
                dim = len(line.rstrip().split(" ")) - 1
                if dim < 1:
                    raise EmbeddingFormatError(f"{path}:{lineno}: a line must hold a token and its vector")
            # Split from the right: a few GloVe tokens contain spaces.
            parts = line.rstrip(" ").rsplit(" ", dim)
            if len(parts) != dim + 1 or not parts[0]:
                raise EmbeddingFormatError(f"{path}:{lineno}: expected a token and {dim} numbers, got "
                                           f"{len(parts) - 1} fields")
            try:
                vec = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                raise EmbeddingFormatError(f"{path}:{lineno}: the vector of {parts[0]!r} has a non-numeric value")
            count += 1
            yield parts[0], vec
    if expected is not None and count != expected:
        raise EmbeddingFormatError(f"{path}: the header announces {expected} vectors but the file holds {count}"
                                   + (" (truncated?)" if count < expected else ""))


def _iter_word2vec_binary(path: Path, encoding: str, errors: str) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (token, vector) from word2vec's C binary format: ``N D\\n`` then ``token<space><D float32>``."""
    with open(path, "rb") as f:
        header = f.readline()
        found = _parse_header(header.decode("ascii", errors="replace"))
        if found is None:
            raise EmbeddingFormatError(f"{path}: expected a '<count> <dim>' header line, got {header[:60]!r}")
        count, dim = found
        nbytes = 4 * dim
        chunk = max(1 << 16, 2 * nbytes)
        buf = b""
        pos = 0
        for i in range(count):
            # token: the bytes up to a space (the C tool writes '\n' after each vector; it is skipped)
            while True:
                end = buf.find(b" ", pos)
                if end >= 0:
                    break
                more = f.read(chunk)
                if not more:
                    raise EmbeddingFormatError(f"{path}: truncated: the file ends after {i} of the {count} "
                                               "vectors its header announces")
                buf, pos = buf[pos:] + more, 0
            raw = buf[pos:end].lstrip(b"\n")
            pos = end + 1
            while len(buf) - pos < nbytes:
                more = f.read(chunk)
                if not more:
                    raise EmbeddingFormatError(f"{path}: truncated inside vector {i} of {count} "
                                               f"({len(buf) - pos} of {nbytes} bytes)")
                buf, pos = buf[pos:] + more, 0
            vec = np.frombuffer(buf, dtype="<f4", count=dim, offset=pos).copy()
            pos += nbytes
            if not raw:
                raise EmbeddingFormatError(f"{path}: empty token for vector {i}; is the dimension in the "
                                           "header right?")
            try:
                token = raw.decode(encoding, errors=errors)
            except UnicodeDecodeError as e:
                raise EmbeddingFormatError(f"{path}: token {i} is not {encoding}: {e}") from None
            yield token, vec
        if (buf[pos:] + f.read(chunk)).strip(b"\n"):
            raise EmbeddingFormatError(f"{path}: data after the {count} vectors the header announces "
                                       "(wrong header, or not a word2vec binary file)")


class TokenEmbedding:
    """Word vectors: a token list and a ``float32`` matrix with one row per token.

    Build one with :meth:`from_file` (or :meth:`from_glove`,
    :meth:`from_fasttext`, :meth:`from_word2vec`), then make the weight of an
    ``nn.Embedding`` for a :class:`~toolkit.nlp.Vocab` with :meth:`attach_to`.

    Parameters
    ----------
    tokens : sequence of str
        Unique tokens, in file order (usually most frequent first).
    vectors : array [len(tokens), dim]

    Notes
    -----
    ``emb[token]`` raises ``KeyError`` for a token without a vector; use
    :meth:`lookup` to get zeros for those instead.
    """

    def __init__(self, tokens: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(tokens):
            raise ValueError(f"vectors must be [len(tokens)={len(tokens)}, dim], got {vectors.shape}")
        self._idx_to_token = list(tokens)
        self._token_to_idx = {t: i for i, t in enumerate(self._idx_to_token)}
        if len(self._token_to_idx) != len(self._idx_to_token):
            raise ValueError("tokens must be unique")
        self._vectors = vectors
        self._unit: np.ndarray | None = None

    # ------------------------------------------------------------- loading
    @classmethod
    def from_file(cls, path: str | os.PathLike, format: str = "auto", encoding: str = "utf-8",
                  unicode_errors: str = "strict", max_tokens: int | None = None,
                  restrict_to: Iterable[str] | None = None) -> TokenEmbedding:
        """Read vectors from a local file.

        Parameters
        ----------
        path : path
        format : {"auto", "glove", "fasttext", "word2vec", "word2vec_binary"}
            ``glove``: text without header; ``fasttext``/``word2vec``: text
            with a ``count dim`` header; ``word2vec_binary``: the C tool's
            binary format. ``auto`` picks binary for ``.bin`` files, else text
            with or without header as the first line shows.
        encoding, unicode_errors : str
            How tokens are decoded.
        max_tokens : int, optional
            Keep only the first ``max_tokens`` vectors (files are sorted by frequency).
        restrict_to : iterable of str, optional
            Keep only these tokens (saves memory with large files).

        Raises
        ------
        FileNotFoundError, EmbeddingFormatError
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"embedding file {path} does not exist")
        if format == "auto":
            format = "word2vec_binary" if path.suffix == ".bin" else "text"
        if format == "word2vec_binary":
            it = _iter_word2vec_binary(path, encoding, unicode_errors)
        elif format in ("text", "glove", "fasttext", "word2vec"):
            header = {"glove": False, "fasttext": True, "word2vec": True}.get(format)
            it = _iter_text(path, encoding, unicode_errors, header)
        else:
            raise ValueError(f"unknown embedding format {format!r}")
        keep = set(restrict_to) if restrict_to is not None else None
        tokens: list[str] = []
        rows: list[np.ndarray] = []
        seen: set[str] = set()
        duplicates = 0
        dim = None
        for token, vec in it:
            if dim is None:
                dim = vec.shape[0]
            if max_tokens is not None and len(tokens) >= max_tokens:
                break
            if keep is not None and token not in keep:
                continue
            if token in seen:
                duplicates += 1  # keep the first (most frequent) vector, as GluonNLP did
                continue
            seen.add(token)
            tokens.append(token)
            rows.append(vec)
        if duplicates:
            warnings.warn(f"{path}: {duplicates} duplicate tokens; kept the first vector of each", stacklevel=2)
        if dim is None:
            raise EmbeddingFormatError(f"{path} holds no vectors")
        vectors = np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        return cls(tokens, vectors)

    @classmethod
    def from_glove(cls, path: str | os.PathLike, **kwargs) -> TokenEmbedding:
        """GloVe text file (``token v1 ... vD`` per line, no header)."""
        return cls.from_file(path, format="glove", **kwargs)

    @classmethod
    def from_fasttext(cls, path: str | os.PathLike, **kwargs) -> TokenEmbedding:
        """fastText ``.vec`` file (text with a ``count dim`` header line)."""
        return cls.from_file(path, format="fasttext", **kwargs)

    @classmethod
    def from_word2vec(cls, path: str | os.PathLike, binary: bool = True, **kwargs) -> TokenEmbedding:
        """word2vec file, binary (default) or text."""
        return cls.from_file(path, format="word2vec_binary" if binary else "word2vec", **kwargs)

    def save(self, path: str | os.PathLike) -> None:
        """Write tokens and vectors to one ``.npz`` file that :meth:`load` reads back quickly.

        Parsing a large text file is slow (GloVe 840B takes minutes); save the
        parsed result once and load that. Tokens are stored as a UTF-8 byte
        blob with offsets, so loading never needs pickle.
        """
        blob = [t.encode("utf-8") for t in self._idx_to_token]
        offsets = np.zeros(len(blob) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in blob], out=offsets[1:])
        with open(path, "wb") as f:  # a file object: np.savez would otherwise append ".npz"
            np.savez(f, vectors=self._vectors, token_bytes=np.frombuffer(b"".join(blob), dtype=np.uint8),
                     token_offsets=offsets)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenEmbedding:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"embedding file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                vectors, raw, offsets = data["vectors"], data["token_bytes"].tobytes(), data["token_offsets"]
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise EmbeddingFormatError(f"{path} is not an embedding saved by TokenEmbedding.save: {e}") from None
        if offsets.shape[0] != vectors.shape[0] + 1 or (len(offsets) and offsets[-1] != len(raw)):
            raise EmbeddingFormatError(f"{path}: token table and vectors do not match (truncated file?)")
        tokens = [raw[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1)]
        return cls(tokens, vectors)

    # --------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._idx_to_token)

    def __contains__(self, token: str) -> bool:
        return token in self._token_to_idx

    def __getitem__(self, tokens: str | Sequence[str]) -> np.ndarray:
        """Vector of a token (``[dim]``) or vectors of a list of tokens (``[n, dim]``)."""
        if isinstance(tokens, str):
            idx = self._token_to_idx.get(tokens)
            if idx is None:
                raise KeyError(f"no vector for token {tokens!r}")
            return self._vectors[idx]
        missing = [t for t in tokens if t not in self._token_to_idx]
        if missing:
            raise KeyError(f"no vector for {len(missing)} tokens, e.g. {missing[:5]}")
        return self._vectors[[self._token_to_idx[t] for t in tokens]]

    def lookup(self, tokens: Sequence[str]) -> np.ndarray:
        """Vectors of ``tokens`` (``[n, dim]``), zeros for tokens without a vector."""
        out = np.zeros((len(tokens), self.dim), dtype=np.float32)
        for i, t in enumerate(tokens):
            j = self._token_to_idx.get(t)
            if j is not None:
                out[i] = self._vectors[j]
        return out

    @property
    def dim(self) -> int:
        return self._vectors.shape[1]

    @property
    def vectors(self) -> np.ndarray:
        """The ``[len, dim]`` float32 matrix (not a copy)."""
        return self._vectors

    @property
    def idx_to_token(self) -> list[str]:
        return list(self._idx_to_token)

    @property
    def token_to_idx(self) -> dict[str, int]:
        return dict(self._token_to_idx)

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to unit L2 norm (zero rows stay zero); cached."""
        if self._unit is None:
            norms = np.linalg.norm(self._vectors, axis=1, keepdims=True)
            self._unit = self._vectors / np.where(norms == 0, 1.0, norms)
        return self._unit

    # --------------------------------------------------------- vocab weight
    def attach_to(self, vocab: Vocab, unknown: str = "zeros", seed: int = 0, scale: float | None = None,
                  lowercase_fallback: bool = False) -> torch.Tensor:
        """The ``[len(vocab), dim]`` weight matrix for ``vocab``: row ``i`` is the vector of ``vocab.to_tokens(i)``.

        Parameters
        ----------
        vocab : Vocab
        unknown : {"zeros", "random"}
            Rows of tokens without a vector: zeros, or normal noise with the
            embedding's own standard deviation (or ``scale``), from ``seed``.
            The padding token's row is always zero.
        seed : int
        scale : float, optional
        lowercase_fallback : bool
            Try the lower-cased token when the token itself has no vector.

        Returns
        -------
        torch.Tensor
            float32 weight; ``attach_to(...).shape[0] == len(vocab)``. The
            number of tokens that found a vector is in :attr:`last_coverage`.
        """
        if unknown not in ("zeros", "random"):
            raise ValueError(f"unknown must be 'zeros' or 'random', got {unknown!r}")
        n = len(vocab)
        weight = np.zeros((n, self.dim), dtype=np.float32)
        found = np.zeros(n, dtype=bool)
        for i, tok in enumerate(vocab.idx_to_token):
            j = self._token_to_idx.get(tok)
            if j is None and lowercase_fallback:
                j = self._token_to_idx.get(tok.lower())
            if j is not None:
                weight[i] = self._vectors[j]
                found[i] = True
        if unknown == "random":
            std = scale if scale is not None else float(self._vectors.std()) if len(self) else 1.0
            rng = np.random.default_rng(seed)
            noise = rng.standard_normal((n, self.dim)).astype(np.float32) * std
            weight[~found] = noise[~found]
        if vocab.pad_id is not None and not found[vocab.pad_id]:
            weight[vocab.pad_id] = 0.0
        self.last_coverage = int(found.sum())
        return torch.from_numpy(weight)

    def to_embedding_layer(self, vocab: Vocab, freeze: bool = False, **kwargs) -> torch.nn.Embedding:
        """An ``nn.Embedding`` initialised by :meth:`attach_to` (``padding_idx`` = the vocab's pad id)."""
        return torch.nn.Embedding.from_pretrained(self.attach_to(vocab, **kwargs), freeze=freeze,
                                                  padding_idx=vocab.pad_id)

    def to_vocab(self, **vocab_kwargs) -> Vocab:
        """A :class:`Vocab` of this embedding's tokens (file order) plus the requested special tokens."""
        return Vocab(self._idx_to_token, **vocab_kwargs)

    # ------------------------------------------------------------- queries
    def most_similar(self, token: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` tokens with the highest cosine similarity to ``token`` (itself excluded)."""
        idx = self._token_to_idx.get(token)
        if idx is None:
            raise KeyError(f"no vector for token {token!r}")
        unit = self.unit_vectors()
        sims = unit @ unit[idx]
        sims[idx] = -np.inf
        top = np.argsort(-sims)[:k]
        return [(self._idx_to_token[i], float(sims[i])) for i in top]

    def __repr__(self) -> str:
        return f"TokenEmbedding(num_tokens={len(self)}, dim={self.dim})"
