"""Graph pass: pick each convolution's CPU kernel by timing the candidates on its shape.

PyTorch chooses a CPU convolution kernel by a fixed rule. With one thread and a
batch under 16 it sends unstrided 1x1 convolutions to its "slow" im2col path,
which runs one small matrix product per sample: at the 3x3 maps of ResNet-50's
last stage, about 3x slower than one matrix product over all ``N*H*W`` positions.
The fast layout also depends on the layer: in a channels-last ResNet-50, that
stage's 3x3 convolutions ran 2.3x faster in NCHW, the early ones fastest as they
were (``benchmarks/results/conv_kernels.txt``, forward and backward).
No fixed rule is right for every layer and machine, so a captured graph measures:
this is what cuDNN's ``benchmark`` mode and MXNet's conv autotuning do on GPUs.
PyTorch has nothing like it on CPU, hence this pass.

For every ``aten.conv2d`` on a CPU floating-point tensor, :func:`autotune_convolutions`
times the applicable kernels of :data:`KERNELS` (forward, and backward too for a
graph that records gradients) on random tensors of the node's shape and strides,
interleaved, and rewrites the node to call the fastest. Each kernel returns the
same values as ``aten.conv2d`` up to float rounding, in the layout aten would
return, so a choice only ever changes speed. Decisions are cached per shape for
the process and on disk (:class:`DecisionCache`, one JSON file per CPU model, ISA,
torch version and thread count under ``$TOOLKIT_HOME/autotune``), so that a
second process skips the timing: the first hybridized call of a ResNet-50 spent
most of its time measuring. ``TOOLKIT_AUTOTUNE_CACHE=0`` turns the disk cache off;
a path there moves it.

Which memory layout suits a network as a whole is a decision of its own (eager
channels-last training ran MobileNetV3 1.08x and ResNet-50 0.92x as fast as NCHW
on a 2-core Intel Xeon, while on a 2-core AMD EPYC channels-last graphs won for
both): :class:`~toolkit.nn.HybridBlock` also captures and tunes a graph on
channels-last inputs and keeps whichever :func:`fastest` finds faster.

A graph is not always faster than the eager module it was captured from (BERT-base
inference on a 2-core AMD EPYC ran slower hybridized in 2 of 3 runs), so the eager
forward (and backward, for graphs that train) runs in the same race: unless the
fastest graph beats it by :data:`EAGER_MARGIN`, the block runs eagerly for that input
signature (:data:`EAGER_ENV` turns the eager candidate off).

For inference (eval mode under ``no_grad``) the race also has the captured graph compiled by Inductor
with its weights frozen in (:class:`FrozenInductor`, :func:`compile_frozen`; :data:`INDUCTOR_ENV` turns
it on; off by default). On a quiet 2-core AMD EPYC, ResNet-50 at batch 16, 224x224 ran it 1.25x as fast
as the autotuned graph after a compile of 35 s (``benchmarks/results/inference_levers.txt``). It stays
opt-in because that compile is one step of lazy tuning: it would stall some later call of the user's by
tens of seconds, where every other step keeps to :data:`LAZY_BUDGET_S`.

The same race holds the captured program converted by OpenVINO and compiled for this CPU with the input
shapes fixed (:class:`FrozenOpenVINO`, :func:`compile_openvino`), by default wherever ``openvino`` is
installed (:data:`OPENVINO_ENV` or ``hybridize(openvino=False)`` leave it out). OpenVINO ships its own
kernels for x86 (it does not go through oneDNN's PyTorch integration or a C++ compiler): with OpenVINO 2026.4
on an AMX Xeon its convert and compile take 0.8-4 s and it won every race of the zoo's classification,
detection, segmentation and BERT models where it converted and matched, 1.13-3.8x the best other candidate
(``benchmarks/results/openvino_zoo.txt``). The segmentation fault that once held it back came from one
``Core`` per compile and is gone (:func:`toolkit.deploy.ov_core.shared_core`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from .fold import get_attr_tensor

__all__ = ["KERNELS", "Choice", "ConvTuner", "DecisionCache", "FrozenGraph", "FrozenInductor", "FrozenOpenVINO", "autotune_convolutions", "clear_cache",
           "compile_frozen", "conv2d_channels_last", "conv2d_contiguous", "conv2d_gemm", "disk_cache", "fastest",
           "frozen_requested", "inductor_enabled", "lazy_enabled", "openvino_enabled", "machine_fingerprint", "race_once"]

_aten = torch.ops.aten

#: A candidate replaces ``aten.conv2d`` only when its median time is below this
#: fraction of aten's, so that timing noise does not swap equal kernels back and forth.
MARGIN = 0.97
#: A captured graph replaces the eager forward only when its median time is below this fraction of
#: eager's (ties go to eager: it needs no capture and has no guards).
EAGER_MARGIN = 0.97
#: ``0``/``off``/``false``/``no`` keeps captured graphs without racing them against eager (the test
#: suite does so: which path wins on tiny models is down to timing noise).
EAGER_ENV = "TOOLKIT_EAGER_FALLBACK"
#: Measuring one shape stops after about this many seconds of kernel time (4 to 10 repeats).
BUDGET_S = 0.3
#: ``0``/``off``/``false``/``no`` measures everything in the first call of a hybridized block (the
#: test suite does so, for decisions it can check after one call); by default the measuring is lazy.
LAZY_ENV = "TOOLKIT_AUTOTUNE_LAZY"
#: Lazy tuning: seconds of measuring each call after the capture may add (at least one step: one
#: convolution's kernels, the channels-last capture, or one round of the race: every candidate once, back to back).
LAZY_BUDGET_S = 0.5
#: ``1``/``on``/``true``/``yes`` adds :class:`FrozenInductor` to inference races (off by default: its compile,
#: 35 s for a ResNet-50 on a quiet 2-core machine, is one long step inside a later call);
#: ``hybridize(inductor=True)`` does so per block, ``inductor=False`` keeps it out whatever the variable says.
INDUCTOR_ENV = "TOOLKIT_AUTOTUNE_INDUCTOR"
#: ``0``/``off``/``false``/``no`` leaves :class:`FrozenOpenVINO` out of inference races (in by default where the
#: ``openvino`` package is installed); ``hybridize(openvino=...)`` decides per block.
OPENVINO_ENV = "TOOLKIT_AUTOTUNE_OPENVINO"
#: Calls with unchanged weights after which a :class:`FrozenGraph` compiles again (before: the fallback graph);
#: the first wait, doubled after each compile that did not pay off (see :class:`FrozenGraph`).
INDUCTOR_RECOMPILE_CALLS = 3
#: The most calls a :class:`FrozenGraph` waits for, however often its compiles were wasted.
RECOMPILE_MAX_WAIT = 1024
#: Lazy tuning: rounds of the race (one run of every candidate each, in alternating order) after a
#: warm-up round; the median decides, as in :func:`fastest`.
RACE_ROUNDS = 4


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    return value * 2 if len(value) == 1 else value  # type: ignore[return-value]


def _output_format(x: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:
    """The layout ``aten.conv2d`` gives on CPU: channels-last if the input or the weight is, else contiguous.

    Keeping it means a rewritten node hands the rest of the graph what it was captured with.
    """
    return torch.channels_last if _channels_last(x) or _channels_last(weight) else torch.contiguous_format


def _channels_last(t: torch.Tensor) -> bool:
    """What ATen's ``suggest_memory_format()`` (not exposed in Python) says of a 4-d tensor."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def conv2d_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                dilation: int | Sequence[int] = 1, groups: int = 1) -> torch.Tensor:
    """A 1x1, unpadded, ungrouped convolution as one matrix product over all ``N*H*W`` positions.

    A stride keeps every ``stride``-th row and column first (what a 1x1 kernel
    with that stride reads). Dilation does not matter for a 1x1 kernel.
    """
    if weight.shape[2:] != (1, 1) or groups != 1 or _pair(padding) != (0, 0):
        raise ValueError("conv2d_gemm takes 1x1 kernels without padding or groups")
    layout = _output_format(x, weight)
    sh, sw = _pair(stride)
    if (sh, sw) != (1, 1):
        x = x[:, :, ::sh, ::sw]
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view for channels-last input, else one copy
    out = F.linear(rows, weight.reshape(weight.shape[0], c), bias)
    # the channel count, not -1: an empty batch (n = 0) makes -1 ambiguous
    return out.view(n, h, w, weight.shape[0]).permute(0, 3, 1, 2).contiguous(memory_format=layout)


def conv2d_channels_last(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                         stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                         dilation: int | Sequence[int] = 1, groups: int = 1) -> torch.Tensor:
    """``conv2d`` run in channels-last memory (oneDNN's NHWC kernels), returned in aten's output layout."""
    out = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, bias, stride, padding, dilation, groups)
    return out.contiguous(memory_format=_output_format(x, weight))


def conv2d_contiguous(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                      stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                      dilation: int | Sequence[int] = 1, groups: int = 1) -> torch.Tensor:
    """``conv2d`` of a channels-last input run in NCHW memory, returned in aten's output layout.

    The counterpart of :func:`conv2d_channels_last` in a channels-last graph: the 3x3
    convolutions of ResNet-50's last stage ran 2.3x faster in NCHW.
    """
    out = F.conv2d(x.contiguous(), weight.contiguous(), bias, stride, padding, dilation, groups)
    return out.contiguous(memory_format=_output_format(x, weight))


def _aten_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _aten.conv2d.default(x, weight, bias, _pair(stride), _pair(padding), _pair(dilation), groups)


def _gemm_applies(x: torch.Tensor, w: torch.Tensor, padding, groups) -> bool:
    return tuple(w.shape[2:]) == (1, 1) and groups == 1 and _pair(padding) == (0, 0)


def _runs_contiguous(x: torch.Tensor, w: torch.Tensor, padding, groups) -> bool:
    return _output_format(x, w) == torch.contiguous_format


def _runs_channels_last(x: torch.Tensor, w: torch.Tensor, padding, groups) -> bool:
    return _output_format(x, w) == torch.channels_last


@dataclass(frozen=True)
class _Kernel:
    fn: Callable[..., torch.Tensor]
    applies: Callable[..., bool]


#: The kernels a convolution may be rewritten to, by name; ``"aten"`` is the graph's own.
#: Each applies where it differs from aten: the layout switches only where aten runs the other one.
KERNELS: dict[str, _Kernel] = {
    "aten": _Kernel(_aten_conv2d, lambda *a: True),
    "channels_last": _Kernel(conv2d_channels_last, _runs_contiguous),
    "contiguous": _Kernel(conv2d_contiguous, _runs_channels_last),
    "gemm": _Kernel(conv2d_gemm, _gemm_applies),
}


@dataclass(frozen=True)
class Choice:
    """The kernel chosen for one convolution node, the medians it was chosen on (seconds, empty
    where aten was the only candidate) and the input shape they were measured at."""

    node: str
    kernel: str
    times: dict[str, float]
    input_shape: tuple[int, ...] = ()


_cache: dict[tuple, tuple[str, dict[str, float]]] = {}

#: Layout of the decision files; a file of another version is ignored (and rewritten).
CACHE_VERSION = 1
#: ``0``/``off``/``false`` disables the disk cache; any other non-empty value is its folder.
CACHE_ENV = "TOOLKIT_AUTOTUNE_CACHE"
#: CPU flags that change which kernel oneDNN runs, hence which candidate wins.
_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "avx_vnni")


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: the platform's description, no flags
        pass
    return model or platform.processor() or platform.machine(), sorted(f for f in _ISA_FLAGS if f in flags)


def machine_fingerprint() -> dict[str, Any]:
    """What a kernel decision depends on besides the operation: CPU model, ISA, torch, threads."""
    model, flags = _cpu_model_and_flags()
    return {"cpu": model, "isa": flags, "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def _cache_folder() -> Path | None:
    if _switched_off(CACHE_ENV):
        return None
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting:
        return Path(setting).expanduser()
    return Path(os.environ.get("TOOLKIT_HOME", Path.home() / ".toolkit")).expanduser() / "autotune"


class DecisionCache:
    """Kernel and layout decisions of one machine fingerprint, kept in one JSON file.

    The file is read once per process and rewritten atomically (temporary file, then
    rename) after new decisions, merged with what another process may have written
    meanwhile. A file that cannot be read, or of another :data:`CACHE_VERSION` or
    fingerprint, is ignored with a warning: the decisions are measured again.
    """

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.entries: dict[str, dict[str, Any]] = self._read(warn=True)

    def _read(self, warn: bool) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as err:
            if warn:
                warnings.warn(f"autotune cache {self.path} unreadable ({err}); measuring again", stacklevel=3)
            return {}
        try:
            data = json.loads(text)
            ok = (isinstance(data, dict) and data.get("version") == CACHE_VERSION
                  and data.get("machine") == self.fingerprint and isinstance(data.get("decisions"), dict))
        except ValueError:
            ok = False
        if not ok:
            if warn:
                warnings.warn(f"ignoring autotune cache {self.path}: corrupt or written by another version; "
                              "its decisions will be measured again", stacklevel=3)
            return {}
        return {k: v for k, v in data["decisions"].items() if isinstance(v, dict)}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, new: dict[str, dict[str, Any]]) -> None:
        """Add decisions and write the file (best effort: a read-only home only costs the speed-up)."""
        if not new:
            return
        self.entries.update(new)
        merged = self._read(warn=False) | self.entries
        data = {"version": CACHE_VERSION, "machine": self.fingerprint, "decisions": merged}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as err:
            warnings.warn(f"cannot write autotune cache {self.path}: {err}", stacklevel=3)


_disk: dict[Path, DecisionCache] = {}


def disk_cache() -> DecisionCache | None:
    """The decision file of this machine under the current ``$TOOLKIT_HOME`` (``None`` when disabled)."""
    folder = _cache_folder()
    if folder is None:
        return None
    fingerprint = machine_fingerprint()
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"v{CACHE_VERSION}-{digest}.json"
    if path not in _disk:
        _disk[path] = DecisionCache(path, fingerprint)
    return _disk[path]


def clear_cache() -> None:
    """Forget all decisions, in memory and this machine's file on disk (the next capture measures again)."""
    _cache.clear()
    cache = disk_cache()
    _disk.clear()
    if cache is not None:
        cache.path.unlink(missing_ok=True)


def _key_text(key: tuple) -> str:
    """A decision key as stable text (dtypes by name) for the JSON file."""
    return repr(key)


def _hint(size: Any) -> int:
    """A concrete size for a possibly symbolic one (the size the graph was captured at)."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        if hint is None:
            raise LookupError(size)
        return int(hint)
    return int(size)


def _meta(gm: fx.GraphModule, arg: Any) -> torch.Tensor | None:
    """The (fake) tensor a node stands for; a ``get_attr`` added by a later pass has no meta: its tensor."""
    if not isinstance(arg, fx.Node):
        return None
    if "val" not in arg.meta and arg.op == "get_attr":
        return get_attr_tensor(gm, arg)
    return arg.meta.get("val")


def _measure(fns: dict[str, Callable[[], Any]], budget_s: float = BUDGET_S) -> dict[str, float]:
    """Median seconds of each function after one warm-up, run interleaved in forward and reverse
    order in turn (A, B, C, C, B, A, ...). In a fixed order a kernel doing exactly aten's work but
    timed second beat aten by more than :data:`MARGIN` on most of a channels-last MobileNetV3's
    convolutions."""
    start = time.perf_counter()
    for fn in fns.values():
        fn()
    first = time.perf_counter() - start
    repeats = max(4, min(10, int(budget_s / max(first, 1e-9))))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats):
        for name in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _workload(kernel: _Kernel, x, w, b, conv_args, grad_out) -> Callable[[], Any]:
    needs_grad = [t for t in (x, w, b) if t is not None and t.requires_grad]
    if grad_out is None or not needs_grad:
        def forward():
            with torch.no_grad():
                kernel.fn(x, w, b, *conv_args)
        return forward

    def forward_backward():
        torch.autograd.grad(kernel.fn(x, w, b, *conv_args), needs_grad, grad_out)
    return forward_backward


def _decide(x_meta, w_meta, b_meta, conv_args, backward: bool, disk: DecisionCache | None = None,
            new: dict | None = None, measure: bool = True) -> tuple[str, dict[str, float]] | None:
    """The kernel decision for one convolution: from this process, from disk, or (with ``measure``)
    measured now and recorded in ``new`` for the disk; ``None`` when unknown and not measured."""
    stride, padding, dilation, groups = conv_args
    # sizes and strides as captured: a channels-last input or weight is measured as one
    layouts = tuple(None if t is None else (tuple(_hint(s) for s in t.shape), tuple(_hint(s) for s in t.stride()))
                    for t in (x_meta, w_meta, b_meta))
    grads = tuple(bool(backward and t is not None and t.requires_grad) for t in (x_meta, w_meta, b_meta))
    key = (layouts, tuple(conv_args), x_meta.dtype, grads, torch.get_num_threads())
    if key in _cache:
        return _cache[key]
    text = "conv2d " + _key_text(key)
    stored = disk.get(text) if disk is not None else None
    if stored is not None and stored.get("kernel") in KERNELS:
        _cache[key] = (stored["kernel"], {k: float(v) for k, v in stored.get("times", {}).items()})
        return _cache[key]
    if not measure:
        return None
    decision = _measure_decision(layouts, grads, x_meta.dtype, conv_args)
    _cache[key] = decision
    if new is not None:
        new[text] = {"kernel": decision[0], "times": decision[1]}
    return decision


def _measure_decision(layouts, grads, dtype, conv_args) -> tuple[str, dict[str, float]]:
    stride, padding, dilation, groups = conv_args
    gen = torch.Generator().manual_seed(0)

    def tensor(layout, needs_grad):
        if layout is None:
            return None
        t = torch.empty_strided(*layout, dtype=dtype).normal_(generator=gen)
        return t.requires_grad_(needs_grad)

    x, w, b = (tensor(layout, g) for layout, g in zip(layouts, grads))
    candidates = {name: k for name, k in KERNELS.items() if k.applies(x, w, padding, groups)}
    if len(candidates) == 1:
        return ("aten", {})
    grad_out = None
    if any(grads):
        with torch.no_grad():
            grad_out = torch.empty_like(_aten_conv2d(x, w, b, *conv_args)).normal_(generator=gen)
    times = _measure({name: _workload(k, x, w, b, conv_args, grad_out) for name, k in candidates.items()})
    best = min(times, key=times.__getitem__)
    if times[best] >= MARGIN * times["aten"]:
        best = "aten"
    return (best, times)


def _conv_args(node: fx.Node) -> tuple | None:
    """(stride, padding, dilation, groups) of an ``aten.conv2d.default`` node, or None if not plain values."""
    names = ("stride", "padding", "dilation", "groups")
    defaults = (1, 0, 1, 1)
    values = []
    for i, (name, default) in enumerate(zip(names, defaults)):
        v = node.args[3 + i] if len(node.args) > 3 + i else node.kwargs.get(name, default)
        if isinstance(v, fx.Node):
            return None
        values.append(int(v) if name == "groups" else _pair(v))
    return tuple(values)


@dataclass
class _ConvSite:
    """One convolution node of a graph that autotuning may rewrite, and what its decision is keyed on."""

    node: fx.Node
    metas: tuple  # (x, weight, bias) fake tensors
    conv_args: tuple
    input_shape: tuple[int, ...]
    decision: tuple[str, dict[str, float]] | None = None  # None: not measured yet


class ConvTuner:
    """The convolutions of one graph and their kernel decisions, measured all at once or a few at a time.

    Decisions already known (this process, or this machine's file on disk) are taken at
    construction without measuring; :meth:`step` measures the next unknown ones, :meth:`apply`
    rewrites the graph with the decisions so far (undecided convolutions keep aten's kernel).
    :class:`~toolkit.nn.HybridBlock` measures lazily, a few convolutions per call after the first,
    so that the first call only pays for the capture.

    Parameters
    ----------
    gm : torch.fx.GraphModule
        An unlifted ``torch.export`` graph whose nodes carry ``meta["val"]``.
    backward : bool
        Time forward and backward instead of the forward alone.
    cache : bool
        Read and write this machine's decisions on disk (see :func:`disk_cache`).
    """

    def __init__(self, gm: fx.GraphModule, backward: bool, cache: bool = True) -> None:
        self.gm = gm
        self.backward = backward
        self.disk = disk_cache() if cache else None
        self.sites: list[_ConvSite] = []
        for node in gm.graph.nodes:
            if node.op != "call_function" or node.target is not _aten.conv2d.default:
                continue
            x_meta, w_meta = _meta(gm, node.args[0]), _meta(gm, node.args[1])
            b_meta = _meta(gm, node.args[2] if len(node.args) > 2 else node.kwargs.get("bias"))
            conv_args = _conv_args(node)
            if (conv_args is None or not isinstance(x_meta, torch.Tensor) or not isinstance(w_meta, torch.Tensor)
                    or x_meta.dim() != 4 or x_meta.device.type != "cpu" or not x_meta.is_floating_point()
                    or w_meta.dtype != x_meta.dtype):
                continue
            try:
                shape = tuple(_hint(size) for size in x_meta.shape)
                site = _ConvSite(node, (x_meta, w_meta, b_meta), conv_args, shape)
                site.decision = _decide(*site.metas, conv_args, backward, self.disk, measure=False)
            except LookupError:  # a size without a concrete hint: leave the node as it is
                continue
            self.sites.append(site)

    @property
    def pending(self) -> int:
        """How many convolutions still wait for a measurement."""
        return sum(site.decision is None for site in self.sites)

    def step(self, budget_s: float = 0.0) -> int:
        """Measure undecided convolutions until ``budget_s`` seconds have passed (at least one);
        returns how many are still pending."""
        start = time.perf_counter()
        new: dict[str, dict[str, Any]] = {}
        for site in self.sites:
            if site.decision is not None:
                continue
            site.decision = _decide(*site.metas, site.conv_args, self.backward, self.disk, new)
            if time.perf_counter() - start >= budget_s:
                break
        if self.disk is not None:
            self.disk.put(new)
        return self.pending

    def run(self) -> list[Choice]:
        """Measure every undecided convolution, then :meth:`apply`."""
        while self.pending:
            self.step(float("inf"))
        return self.apply()

    def apply(self) -> list[Choice]:
        """Point every decided node at its kernel (and recompile the graph where that changed one)."""
        changed = False
        choices = []
        for site in self.sites:
            kernel, times = site.decision if site.decision is not None else ("aten", {})
            choices.append(Choice(site.node.name, kernel, times, site.input_shape))
            target = KERNELS[kernel].fn if kernel != "aten" else _aten.conv2d.default
            if site.node.target is not target:
                site.node.target = target
                changed = True
        if changed:
            self.gm.recompile()
        return choices


def autotune_convolutions(gm: fx.GraphModule, backward: bool, cache: bool = True) -> list[Choice]:
    """Rewrite every CPU floating-point ``aten.conv2d`` in ``gm`` to its fastest kernel.

    Parameters
    ----------
    gm : torch.fx.GraphModule
        An unlifted ``torch.export`` graph (``ExportedProgram.module()``), whose
        nodes carry ``meta["val"]`` (shapes may be symbolic; the sizes the graph
        was captured at are measured).
    backward : bool
        Time forward and backward (a graph that records gradients) instead of
        the forward alone.
    cache : bool
        Read and write decisions of this machine on disk (see :func:`disk_cache`);
        ``False`` measures every shape not yet measured in this process.

    Returns
    -------
    list of Choice
        One entry per convolution considered, in graph order. ``gm`` is rewritten
        in place (and recompiled) where a kernel other than ``"aten"`` won.
    """
    return ConvTuner(gm, backward, cache).run()


def _channels_last_candidate(value: Any) -> bool:
    return (isinstance(value, torch.Tensor) and value.dim() == 4 and value.is_floating_point()
            and value.device.type == "cpu" and not _channels_last(value))


def channels_last_inputs(args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """``(args, kwargs)`` with every 4-d CPU floating-point tensor in channels-last memory, or
    ``None`` when there is none to convert (no image input, or it is channels-last already)."""
    if not any(_channels_last_candidate(v) for v in torch.utils._pytree.tree_leaves((args, kwargs))):
        return None
    return _to_channels_last((args, kwargs))


def _to_channels_last(tree: Any) -> Any:
    return torch.utils._pytree.tree_map(
        lambda v: v.contiguous(memory_format=torch.channels_last) if _channels_last_candidate(v) else v, tree)


class ChannelsLastInputs:
    """Calls a graph captured on channels-last inputs, converting the inputs first."""

    def __init__(self, runner: Callable[..., Any]) -> None:
        self.runner = runner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _to_channels_last((args, kwargs))  # one pass over the inputs on every call
        return self.runner(*args, **kwargs)


def _race_workload(runner: Callable[..., Any], args: tuple, kwargs: dict,
                   params: list[torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        out = runner(*args, **kwargs)
        leaves = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor) and t.requires_grad]
        if params and leaves:
            torch.autograd.grad(leaves, params, [torch.ones_like(t) for t in leaves], allow_unused=True)
    return run


def _race_params(module: torch.nn.Module, backward: bool) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.requires_grad] if backward and torch.is_grad_enabled() else []


@contextlib.contextmanager
def _no_trace(module: torch.nn.Module) -> Iterator[None]:
    """Timing runs inside leave no trace: the random number generator and the buffers a run wrote
    (running statistics of a training graph) are put back. Only buffers whose values changed are
    copied back: a copy moves the buffer's version counter, and a frozen inference graph
    (:class:`FrozenGraph`) would take that for new weights and fall back to its captured graph. (The
    counters themselves cannot say what a run wrote: batch norm updates its statistics in place
    without moving them.)"""
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                if not torch.equal(buffer, value):
                    buffer.copy_(value)


def fastest(runners: Sequence[Callable[..., Any]], args: tuple, kwargs: dict, module: torch.nn.Module,
            budget_s: float = 1.0, backward: bool | None = None,
            names: Sequence[str] | None = None) -> tuple[int, list[float]]:
    """The index of the fastest of several graphs of ``module``, and their median seconds.

    ``names`` labels the runners for the measurement (default ``"0"``, ``"1"`` ...). Each graph
    runs on the capture's own inputs; with ``backward`` (default: when
    gradients are enabled), forward and backward (through ``torch.autograd.grad``, so
    no ``.grad`` is touched). The module's buffers (running statistics that a training
    graph updates) and the random number generator are restored afterwards: timing
    leaves no trace.
    """
    if backward is None:
        backward = torch.is_grad_enabled()
    params = _race_params(module, backward)
    labels = [str(i) for i in range(len(runners))] if names is None else [str(n) for n in names]
    if len(set(labels)) != len(runners):
        raise ValueError(f"fastest needs one distinct name per runner, got {labels}")
    with _no_trace(module):
        times = _measure({label: _race_workload(r, args, kwargs, params) for label, r in zip(labels, runners)},
                         budget_s)
    medians = [times[label] for label in labels]
    return min(range(len(runners)), key=medians.__getitem__), medians


def race_once(name: str, runner: Callable[..., Any], args: tuple, kwargs: dict, module: torch.nn.Module,
              backward: bool) -> float:
    """Seconds of one run of one candidate of a race (what :func:`fastest` repeats), leaving no trace.

    The lazy race of :class:`~toolkit.nn.HybridBlock` calls it once per candidate and round,
    spread over the calls after the capture; ``name`` is the candidate's label (``"as_given"``,
    ``"channels_last"``, ``"eager"``), for tests that fake the timing.
    """
    params = _race_params(module, backward)
    with _no_trace(module):
        run = _race_workload(runner, args, kwargs, params)
        start = time.perf_counter()
        run()
        return time.perf_counter() - start


def layout_key(module: torch.nn.Module, args: tuple, kwargs: dict, backward: bool) -> str:
    """What the whole-graph layout race of :class:`~toolkit.nn.HybridBlock` depends on, as text:
    the module's structure (class, printed configuration, parameter and buffer shapes), its
    mode, the inputs' shapes, strides and dtypes, and whether backward is timed."""

    def leaf(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return ("T", tuple(v.shape), tuple(v.stride()), str(v.dtype), v.device.type, v.requires_grad)
        return ("V", type(v).__name__, repr(v)[:200])

    structure = hashlib.sha256()
    structure.update(f"{type(module).__module__}.{type(module).__qualname__}\n{module!r}".encode())
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        structure.update(f"{name}{tuple(t.shape)}{t.dtype}{t.requires_grad}".encode())
    inputs = [leaf(v) for v in torch.utils._pytree.tree_leaves((args, kwargs))]
    return f"layout {structure.hexdigest()[:24]} {module.training} {bool(backward)} {inputs!r}"


#: What a race of :class:`~toolkit.nn.HybridBlock` may decide: a graph on the inputs as given, one on
#: channels-last image inputs, the eager module, or (inference only) the graph compiled by Inductor with
#: frozen weights (:class:`FrozenInductor`) or converted and compiled by OpenVINO (:class:`FrozenOpenVINO`).
PATHS = ("as_given", "channels_last", "eager", "inductor", "openvino")


def _switched_on(env: str) -> bool:
    return os.environ.get(env, "").strip().lower() in ("1", "on", "true", "yes")


def _switched_off(env: str) -> bool:
    return os.environ.get(env, "").strip().lower() in ("0", "off", "false", "no")


def lazy_enabled() -> bool:
    """Whether hybridized blocks measure lazily, over the calls after the capture (see :data:`LAZY_ENV`)."""
    return not _switched_off(LAZY_ENV)


def eager_fallback_enabled() -> bool:
    """Whether captures race the eager forward too (see :data:`EAGER_ENV`)."""
    return not _switched_off(EAGER_ENV)


def inductor_enabled() -> bool:
    """Whether inference races include :class:`FrozenInductor` by default (see :data:`INDUCTOR_ENV`):
    turned on, and a C++ compiler on the ``PATH`` (Inductor generates and builds C++)."""
    if not _switched_on(INDUCTOR_ENV):
        return False
    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


def openvino_enabled() -> bool:
    """Whether inference races include :class:`FrozenOpenVINO` by default (see :data:`OPENVINO_ENV`): the
    ``openvino`` package installed, and the variable not turning it off."""
    import importlib.util

    return not _switched_off(OPENVINO_ENV) and importlib.util.find_spec("openvino") is not None


#: A frozen-weight candidate is compiled only where the memory available is at least this many times the
#: block's weights: the compiled model holds its own copy, and converting holds more for a while
#: (``benchmarks/results/openvino_zoo.txt``: 0.8-4x the weights' size after the race).
FROZEN_MEMORY_FACTOR = 4


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` of ``/proc/meminfo``); ``None`` where
    that is not known (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def frozen_fits_memory(module: torch.nn.Module) -> tuple[bool, int, int | None]:
    """Whether a frozen-weight copy of ``module`` fits (see :data:`FROZEN_MEMORY_FACTOR`), with the bytes of
    its weights and the bytes available."""
    weights = sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))
    free = available_memory()
    return free is None or FROZEN_MEMORY_FACTOR * weights <= free, weights, free


def frozen_requested(path: str) -> bool:
    """Whether the environment asks for the frozen path ``path`` (:data:`INDUCTOR_ENV`/:data:`OPENVINO_ENV`
    set to on): a failed compile is then worth a warning; by default it is only logged at INFO."""
    return _switched_on({"inductor": INDUCTOR_ENV, "openvino": OPENVINO_ENV}[path])


def compile_frozen(gm: fx.GraphModule, args: tuple, kwargs: dict) -> Callable[..., Any]:
    """``gm`` compiled by Inductor with frozen weights and the C++ wrapper, for these input shapes,
    compiled by a first call on ``args``. Weights become constants (batch norms folded, oneDNN weight
    prepacking): the result must not run after they change (:class:`FrozenInductor` checks)."""
    import torch._inductor.config as inductor_config

    with inductor_config.patch({"freezing": True, "cpp_wrapper": True}), torch.no_grad():
        compiled = torch.compile(gm, dynamic=False)
        compiled(*args, **kwargs)
    return compiled


def _flat_shapes(args: tuple, kwargs: dict) -> tuple:
    return tuple((tuple(v.shape), tuple(v.stride()), v.dtype) if isinstance(v, torch.Tensor) else repr(v)
                 for v in torch.utils._pytree.tree_leaves((args, kwargs)))


def _close(out: Any, ref: Any) -> bool:
    """Whether a candidate's output equals the captured graph's up to float rounding (ATen's and Inductor's
    kernels sum in other orders: tolerances relative to the output's scale)."""
    outs, refs = torch.utils._pytree.tree_leaves(out), torch.utils._pytree.tree_leaves(ref)
    if len(outs) != len(refs):
        return False
    for o, r in zip(outs, refs):
        if isinstance(r, torch.Tensor):
            if not isinstance(o, torch.Tensor) or o.shape != r.shape or o.dtype != r.dtype:
                return False
            if r.is_floating_point():
                scale = float(r.abs().max()) if r.numel() else 0.0
                if not torch.allclose(o, r, rtol=1e-4, atol=1e-4 * (1.0 + scale)):
                    return False
            elif not torch.equal(o, r):
                return False
    return True


class FrozenGraph:
    """Runs an inference graph compiled with its weights frozen in, by a backend (:meth:`build`).

    Frozen weights are copies and constants: after any parameter or buffer of ``module`` changes (its
    version counter moves: an optimizer step, ``load_state_dict``, ``copy_``), calls go to ``fallback``
    (the captured graph, which refolds its batch norms), and the graph is compiled again once the
    weights have stayed the same for :data:`INDUCTOR_RECOMPILE_CALLS` calls (a compile takes seconds to
    minutes: not for every evaluation between training steps). A compile whose graph answered fewer than
    four times the calls waited for before the weights changed again did not pay off (a loop that
    evaluates a few batches between training steps): the wait doubles, up to :data:`RECOMPILE_MAX_WAIT`.
    Inputs of other shapes or strides than the compiled ones also go to ``fallback`` (no recompiling
    per batch size).
    """

    #: The backend's name, for messages.
    backend = ""

    def __init__(self, program: torch.export.ExportedProgram, module: torch.nn.Module,
                 fallback: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.program, self.module, self.fallback = program, module, fallback
        self.shapes = _flat_shapes(args, kwargs)
        self.compiles = 0
        self._compiled: Callable[..., Any] | None = None
        self._versions = self._current()
        self._stable = 0
        self.wait = INDUCTOR_RECOMPILE_CALLS  # calls with unchanged weights before compiling again
        self._served = 0  # calls the compiled graph answered since its compile
        self._compile(args, kwargs)

    def build(self, args: tuple, kwargs: dict) -> Callable[..., Any]:
        """The compiled callable for these inputs, with the weights ``module`` has now."""
        raise NotImplementedError

    def _current(self) -> tuple[int, ...]:
        return tuple(t._version for t in list(self.module.parameters()) + list(self.module.buffers()))

    def _compile(self, args: tuple, kwargs: dict) -> None:
        self._compiled = self.build(args, kwargs)
        self._versions = self._current()
        self._served = 0
        self.compiles += 1

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled() or _flat_shapes(args, kwargs) != self.shapes:
            return self.fallback(*args, **kwargs)
        versions = self._current()
        if versions != self._versions:  # weights changed: stale constants
            if self._compiled is not None and self._served < 4 * self.wait:  # that compile did not pay off
                self.wait = min(2 * self.wait, RECOMPILE_MAX_WAIT)
            self._compiled, self._versions, self._stable = None, versions, 0
        if self._compiled is None:
            self._stable += 1
            if self._stable <= self.wait:
                return self.fallback(*args, **kwargs)
            self._compile(args, kwargs)
        self._served += 1
        return self._compiled(*args, **kwargs)


class FrozenInductor(FrozenGraph):
    """A :class:`FrozenGraph` compiled by Inductor (:func:`compile_frozen`)."""

    backend = "Inductor"

    def build(self, args: tuple, kwargs: dict) -> Callable[..., Any]:
        # a fresh module from the program: Inductor freezes the values the live parameters have now
        return compile_frozen(self.program.module(), args, kwargs)


class FrozenOpenVINO(FrozenGraph):
    """A :class:`FrozenGraph` converted and compiled by OpenVINO (:func:`compile_openvino`)."""

    backend = "OpenVINO"

    def build(self, args: tuple, kwargs: dict) -> Callable[..., Any]:
        return compile_openvino(self.program, args, kwargs, self.fallback(*args, **kwargs))


def compile_openvino(program: torch.export.ExportedProgram, args: tuple, kwargs: dict,
                     example_output: Any) -> Callable[..., Any]:
    """``program`` converted by OpenVINO's PyTorch frontend and compiled for the CPU, its inputs fixed to
    the shapes of ``args`` (static shapes let OpenVINO pick its kernels once), in float32 (no bfloat16
    where the CPU has it: answers must match the graph's), on as many threads as torch uses. The
    weights are copied in as constants. Returns a callable giving outputs shaped like ``example_output``.
    Only positional tensor inputs are supported: anything else raises ``TypeError``."""
    import openvino as ov

    from ..deploy.ov_core import convert_program, shared_core  # one Core per process, logging kept: see there

    flat = torch.utils._pytree.tree_leaves((args, kwargs))
    if kwargs or not flat or not all(isinstance(v, torch.Tensor) for v in flat):
        raise TypeError("the OpenVINO candidate takes positional tensor inputs only")
    outs, spec = torch.utils._pytree.tree_flatten(example_output)
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise TypeError("the OpenVINO candidate needs tensor outputs only")
    model = convert_program(program)
    if len(model.inputs) != len(flat) or len(model.outputs) != len(outs):
        raise TypeError(f"OpenVINO's model has {len(model.inputs)} inputs and {len(model.outputs)} outputs, "
                        f"the graph {len(flat)} and {len(outs)}")
    model.reshape({port: ov.PartialShape(list(v.shape)) for port, v in zip(model.inputs, flat)})
    compiled = shared_core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_NUM_THREADS": torch.get_num_threads(),
                                                          "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    dtypes = [o.dtype for o in outs]

    def run(*call_args: Any) -> Any:
        arrays = [t.detach().contiguous().numpy() for t in call_args]
        request.infer(arrays)  # outputs copied out below: the request reuses its buffers next call
        results = [torch.from_numpy(request.get_output_tensor(i).data.copy()).to(dtype)
                   for i, dtype in enumerate(dtypes)]
        return torch.utils._pytree.tree_unflatten(results, spec)

    return run


#: The :class:`FrozenGraph` class of each frozen path (inference only), in the order they join a race.
FROZEN_BACKENDS: dict[str, type[FrozenGraph]] = {"inductor": FrozenInductor, "openvino": FrozenOpenVINO}
FROZEN_PATHS = tuple(FROZEN_BACKENDS)


def cached_decision(key: str) -> dict[str, Any] | None:
    """The decision stored for ``key`` on this machine (``memory_format`` one of :data:`PATHS`), if any."""
    disk = disk_cache()
    entry = disk.get(key) if disk is not None else None
    return entry if entry is not None and entry.get("memory_format") in PATHS else None


def cached_layout(key: str) -> str | None:
    """The path (``"as_given"``/``"channels_last"``/``"eager"``) stored for ``key`` on this machine, if any."""
    entry = cached_decision(key)
    return None if entry is None else entry["memory_format"]


def store_layout(key: str, memory_format: str, times: Sequence[float] | dict[str, float], **extra: Any) -> None:
    """Remember the outcome of a race (see :func:`cached_layout`); ``extra`` must be JSON values."""
    disk = disk_cache()
    if disk is not None:
        times = ({k: float(t) for k, t in times.items()} if isinstance(times, dict) else [float(t) for t in times])
        disk.put({key: {"memory_format": memory_format, "times": times, **extra}})
