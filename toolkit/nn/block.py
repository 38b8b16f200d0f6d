"""Hybridizable blocks: eager PyTorch modules that can capture themselves as graphs.

A :class:`HybridBlock` is a plain ``torch.nn.Module`` until :meth:`HybridBlock.hybridize`
is called. After that, its next call captures the forward with ``torch.export``
(the batch axis, and for text blocks the sequence axis, dynamic) and later calls
run the captured graph. An input the graph cannot take (another rank, dtype,
device, mode, or a size outside what the capture allowed) gets a graph of its
own: never a wrong answer.
"""
from __future__ import annotations

import contextlib
import logging
import math
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from .autotune import EAGER_MARGIN
from .autotune import MARGIN as AUTOTUNE_MARGIN
from . import autotune as _autotune
from .autotune import (FROZEN_BACKENDS, FROZEN_PATHS, ChannelsLastInputs, Choice, ConvTuner, cached_decision,
                       channels_last_inputs, eager_fallback_enabled, fastest, inductor_enabled, layout_key, lazy_enabled,
                       openvino_enabled, store_layout)
from .fold import FoldedGraph, fold_for_inference

__all__ = ["ExportSpec", "HybridBlock", "HybridizeError"]

_state = threading.local()
_log = logging.getLogger(__name__)


class HybridizeError(RuntimeError):
    """Raised when a block's forward cannot be captured as a graph.

    Attributes
    ----------
    block_path : str
        Qualified name of the innermost sub-module that was running when capture
        failed (``""`` for the hybridized block itself).
    block_type : str
        Class name of that sub-module.
    """

    def __init__(self, message: str, block_path: str = "", block_type: str = ""):
        super().__init__(message)
        self.block_path = block_path
        self.block_type = block_type


@dataclass(frozen=True)
class ExportSpec:
    """The dynamic dimensions of an export (:meth:`HybridBlock.export_spec`).

    Attributes
    ----------
    axes : list of dict
        Per positional input, ``{axis: axis name}`` of its dynamic axes.
    dynamic_shapes : tuple
        The same axes as ``torch.export`` ``dynamic_shapes`` (one entry per input).
    """

    axes: list[dict[int, str]]
    dynamic_shapes: tuple


def _capturing() -> bool:
    return getattr(_state, "depth", 0) > 0


@contextlib.contextmanager
def _capture_scope():
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


@dataclass
class _Graph:
    """One captured forward (or the eager module, where it won the race) and the shapes it accepts."""

    program: torch.export.ExportedProgram | None  # None: the eager forward
    runner: Callable[..., Any]
    # per user-input tensor: tuple of (static size | (low, high)) per axis
    accepts: list[tuple | None] = field(default_factory=list)
    # input shapes the graph's own runtime guards refused (guards the ranges above do not show)
    refused: set[tuple] = field(default_factory=set)
    # the kernel autotuning chose for each convolution (empty without autotune)
    kernels: list[Choice] = field(default_factory=list)
    # the memory layout image inputs are run in ("as_given", or "channels_last" when autotuning chose it),
    # or "eager" when the eager forward beat every captured graph
    # ("inductor"/"openvino": the graph compiled with frozen weights, see toolkit.nn.autotune.FrozenGraph)
    memory_format: str = "as_given"
    # median seconds of each candidate of the capture-time race, by path (empty: no race ran here)
    race: dict[str, float] = field(default_factory=dict)
    # the convolutions' kernel decisions (None without autotune or with torch.compile, which tunes at once)
    conv_tuner: ConvTuner | None = None
    # the measuring left for the calls after the capture (None: none left)
    tuning: "_LazyTuning | None" = None

    def fits(self, flat_inputs: Sequence[Any]) -> bool:
        if len(flat_inputs) != len(self.accepts) or _shapes(flat_inputs) in self.refused:
            return False
        for value, spec in zip(flat_inputs, self.accepts):
            if spec is None:
                continue
            if not isinstance(value, torch.Tensor) or value.dim() != len(spec):
                return False
            for size, allowed in zip(value.shape, spec):
                if isinstance(allowed, int):
                    if size != allowed:
                        return False
                elif not (allowed[0] <= size <= allowed[1]):
                    return False
        return True


def _shapes(flat_inputs: Sequence[Any]) -> tuple:
    return tuple(tuple(v.shape) if isinstance(v, torch.Tensor) else None for v in flat_inputs)


class _EagerRunner:
    """Runs a block's own forward with no graph captured or used (for it or any sub-block)."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _capture_scope():
            return nn.Module.__call__(self.block, *args, **kwargs)


def _accepts_to_json(accepts: list[tuple | None]) -> list:
    """A graph's accepted sizes for the decision file (JSON has no infinity: ``None`` instead)."""
    def size(s):
        return s if isinstance(s, int) else [s[0], None if math.isinf(s[1]) else s[1]]
    return [None if spec is None else [size(s) for s in spec] for spec in accepts]


def _accepts_from_json(data: Any) -> list[tuple | None] | None:
    try:
        return [None if spec is None else
                tuple(s if isinstance(s, int) else (int(s[0]), float("inf") if s[1] is None else int(s[1]))
                      for s in spec) for spec in data]
    except (TypeError, ValueError, IndexError):
        return None


def _race_times(entry: Mapping[str, Any]) -> dict[str, float]:
    """The race medians of a decision read from the autotune cache (older entries list them unnamed)."""
    times = entry.get("times")
    return {str(k): float(v) for k, v in times.items()} if isinstance(times, dict) else {}


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _exact_accepts(flat_inputs: Sequence[Any]) -> list[tuple | None]:
    return [tuple(v.shape) if isinstance(v, torch.Tensor) else None for v in flat_inputs]


# What the graph of ``ExportedProgram.module()`` raises when an input breaks one of
# its guards (torch 2.x: an AssertionError "Guard failed: ..." from the guard
# function, or a RuntimeError "Expected input at ..." from the input check).
_GUARD_MESSAGES = ("Guard failed", "Expected input at")


def _is_guard_failure(err: BaseException) -> bool:
    return isinstance(err, (AssertionError, RuntimeError)) and str(err).startswith(_GUARD_MESSAGES)


def _key(training: bool, args: tuple, kwargs: dict) -> tuple:
    """Everything a captured graph is specialised on, apart from sizes."""

    def one(v):
        if isinstance(v, torch.Tensor):
            return ("T", v.dtype, v.device.type, v.dim(), v.requires_grad)
        if isinstance(v, (list, tuple)):
            return (type(v).__name__, tuple(one(x) for x in v))
        if isinstance(v, dict):
            return ("dict", tuple((k, one(x)) for k, x in sorted(v.items())))
        return ("V", repr(v))

    return (training, torch.is_grad_enabled(), _autocast_state(), one(args), one(kwargs))


def _autocast_state() -> tuple:
    """The mixed precision a call runs under: ``torch.autocast`` casts the graph's operations at run
    time, so a graph captured in float32 serves it, but its races and kernel timings do not."""
    return tuple((device, torch.get_autocast_dtype(device)) for device in ("cpu", "cuda")
                 if torch.is_autocast_enabled(device))


def _has_conv2d(program: torch.export.ExportedProgram | None) -> bool:
    """Whether the program has the convolutions :class:`~toolkit.nn.autotune.ConvTuner` would tune."""
    return program is not None and any(node.op == "call_function" and node.target is torch.ops.aten.conv2d.default
                                       for node in program.graph.nodes)


def _channels_last_flag(v: Any) -> bool | None:
    if not isinstance(v, torch.Tensor) or v.dim() != 4:
        return None
    return v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous()


def _sym_range(program: torch.export.ExportedProgram, size) -> int | tuple[int, float]:
    if isinstance(size, int):
        return size
    expr = size.node.expr
    constraint = program.range_constraints.get(expr)
    if constraint is None:  # derived expression (e.g. 2*s0): let the graph's own check decide
        return (0, float("inf"))
    try:
        upper: float = int(constraint.upper)
    except (TypeError, AttributeError, OverflowError, ValueError):  # sympy/torch infinity
        upper = float("inf")
    return (int(constraint.lower), upper)


class _LazyTuning:
    """What autotuning still has to measure for one captured graph, done a step at a time.

    The steps, in order: the kernels of the graph's convolutions not decided yet (one convolution a
    step), a capture on channels-last inputs and its kernels (when the layout is raced), then the race
    of the graphs and the eager forward (one round a step: every candidate once, back to back; a warm-up round and
    :data:`~toolkit.nn.autotune.RACE_ROUNDS` rounds in alternating order). When done, the
    :class:`_Graph` is updated in place to the winner, and the decision stored on disk.
    With ``lazy`` the steps run at the start of later calls of the graph's input signature, on
    their inputs, :data:`~toolkit.nn.autotune.LAZY_BUDGET_S` seconds a call; otherwise all at once.
    """

    def __init__(self, block: "HybridBlock", graph: _Graph, key: str | None, race_layout: bool, race_eager: bool,
                 backward: bool, lazy: bool, defer: str | None | bool = False,
                 race_frozen: Sequence[str] = ()) -> None:
        self.block, self.graph, self.key = block, graph, key
        # False: the graph is captured; else it is a stand-in running eagerly, and the first step captures
        # (in the layout stored for the signature, a str, or as given, None)
        self.defer = defer
        self.race_layout, self.race_eager, self.backward, self.lazy = race_layout, race_eager, backward, lazy
        self.race_frozen = tuple(race_frozen)  # frozen-weight candidates (inference only), see FROZEN_PATHS
        self.args: tuple = ()
        self.kwargs: dict = {}
        self.seconds = 0.0  # measuring time spent so far
        self.steps = 0
        self._work = self._steps()

    def pending(self) -> bool:
        """Whether anything is left to measure (a race, or a convolution without its decision)."""
        tuner = self.graph.conv_tuner
        return (self.defer is not False or self.race_layout or self.race_eager or bool(self.race_frozen)
                or (tuner is not None and tuner.pending > 0))

    def step(self, args: tuple, kwargs: dict, budget_s: float) -> bool:
        """Run steps on these inputs for ``budget_s`` seconds (at least one); ``True`` once all are done."""
        self.args, self.kwargs = args, kwargs
        start = time.perf_counter()
        try:
            while True:
                next(self._work)
                self.steps += 1
                if time.perf_counter() - start >= budget_s:
                    return False
        except StopIteration:
            return True
        except HybridizeError:  # the deferred capture failed: raised, and tried again by the next call
            self._work = self._steps()
            raise
        except Exception as err:  # noqa: BLE001 - measuring only ever costs speed, never the answer
            _log.warning("%s: autotuning stopped (%s: %s); keeping the graph as it is",
                         type(self.block).__name__, type(err).__name__, err)
            return True
        finally:
            self.args, self.kwargs = (), {}
            self.seconds += time.perf_counter() - start

    def _tune_kernels(self, graph: _Graph):
        tuner = graph.conv_tuner
        if tuner is None:
            return
        while tuner.pending:
            tuner.step(0.0)
            yield
        graph.kernels = tuner.apply()

    def _steps(self):
        block, graph, backward = self.block, self.graph, self.backward
        if self.defer is not False:
            known = self.defer
            captured = block._capture_path(self.args, self.kwargs, known, backward)
            for name in ("program", "runner", "accepts", "kernels", "memory_format", "conv_tuner"):
                setattr(graph, name, getattr(captured, name))
            if known is not None:
                graph.race = _race_times(cached_decision(self.key) or {})
            self.defer = False
            if not self.pending():  # a stored decision with every kernel known: done
                return
            yield
        yield from self._tune_kernels(graph)
        candidates: dict[str, _Graph | _EagerRunner] = {"as_given": graph}
        # a layout race is for graphs with convolutions (under autocast, untuned ones: no kernels listed)
        if self.race_layout and (graph.kernels or _has_conv2d(graph.program)):
            converted = channels_last_inputs(self.args, self.kwargs)
            if converted is not None:
                alt = block._capture_channels_last(converted, backward)
                candidates["channels_last"] = alt
                yield
                yield from self._tune_kernels(alt)
        if self.race_eager:
            candidates["eager"] = _EagerRunner(block)
        for name in self.race_frozen:
            frozen = block._freeze(graph, self.args, self.kwargs, name)  # one step: the compile
            if frozen is not None:
                candidates[name] = frozen
            yield
        if len(candidates) == 1:
            return

        def runner(c):
            return c.runner if isinstance(c, _Graph) else c

        names = list(candidates)
        if self.lazy:
            samples: dict[str, list[float]] = {n: [] for n in names}
            for r in range(1 + _autotune.RACE_ROUNDS):
                # a round is one step: its candidates run back to back, so that what the calls do in
                # between (a training step, other work) weighs on all of them alike
                for name in (names if r % 2 == 0 else names[::-1]):
                    seconds = _autotune.race_once(name, runner(candidates[name]), self.args, self.kwargs, block,
                                                  backward)
                    if r > 0:  # the first round warms up
                        samples[name].append(seconds)
                yield
            times = {n: statistics.median(v) for n, v in samples.items()}
        else:
            _, medians = fastest([runner(c) for c in candidates.values()], self.args, self.kwargs, block,
                                 backward=backward, names=names)
            times = dict(zip(names, medians))
        best = graph
        alt = candidates.get("channels_last")
        if isinstance(alt, _Graph) and times["channels_last"] < AUTOTUNE_MARGIN * times["as_given"]:
            best = alt
        extra: dict[str, Any] = {}
        path = best.memory_format
        for name in FROZEN_PATHS:
            frozen = candidates.get(name)
            if isinstance(frozen, _Graph) and times[name] < AUTOTUNE_MARGIN * times[path]:
                best, path = frozen, name
        if self.race_eager and not times[path] < EAGER_MARGIN * times["eager"]:
            # the eager forward takes the shapes the best graph would have taken
            extra["accepts"] = _accepts_to_json(best.accepts)
            path = "eager"
        # the graph found first becomes the winner (the lookup in _call_hybrid holds that object)
        if path == "eager":
            graph.program, graph.runner, graph.kernels = None, candidates["eager"], []
            graph.accepts = list(best.accepts)
        elif best is not graph:
            graph.program, graph.runner, graph.kernels, graph.accepts = best.program, best.runner, best.kernels, best.accepts
        graph.memory_format = path
        graph.race = times
        graph.conv_tuner = None
        self.race_frozen = ()
        _log.debug("%s: %s kept for this input signature (%s; %s backward)", type(block).__name__, path,
                   ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in times.items()), "with" if backward else "without")
        store_layout(self.key, path, times, **extra)


class HybridBlock(nn.Module):
    """Base class of every toolkit model: eager PyTorch, capturable as a graph.

    Subclasses write an ordinary ``forward``. Class attribute
    :attr:`dynamic_axes` names the axes of every tensor input that may change
    size between calls without a new capture (``{0: "batch"}`` for images,
    ``{0: "batch", 1: "seq"}`` for token sequences); a mapping from input name to
    such a dict sets them per input.

    Attributes
    ----------
    metadata : dict
        Everything an exported graph needs to be used on its own: ``name``,
        ``task``, ``preprocessing``, ``classes``, ``input_shape`` ... filled by the
        model builders and the zoo, written next to the graph by :meth:`export`.
    """

    dynamic_axes: Mapping[Any, Any] = {0: "batch"}
    #: Graph input/output names used by :meth:`export` (default: forward's
    #: parameter names, and ``output``/``output0..N``).
    input_names: Sequence[str] | None = None
    output_names: Sequence[str] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.metadata: dict[str, Any] = {}
        self._hybrid_active = False
        self._hybrid_compile = False
        self._hybrid_autotune = True
        self._hybrid_lazy: bool | None = None
        self._hybrid_inductor: bool | None = None
        self._hybrid_openvino: bool | None = None
        self._graphs: dict[tuple, list[_Graph]] = {}
        self._last_graph: _Graph | None = None

    # ------------------------------------------------------------------ hybridize
    def hybridize(self, active: bool = True, compile: bool = False, autotune: bool = True,
                  lazy: bool | None = None, inductor: bool | None = None,
                  openvino: bool | None = None) -> "HybridBlock":
        """Capture the forward as a graph on the next call (or go back to eager).

        Parameters
        ----------
        active : bool
            ``True`` to run captured graphs, ``False`` to run eagerly again.
        compile : bool
            Also run the captured graph through ``torch.compile``. Off by default:
            it speeds CNNs up on CPU but slowed a Transformer encoder down.
        autotune : bool
            On CPU, time the candidate kernels of every convolution on its captured
            shape and run the fastest, and run image inputs in channels-last memory
            when the whole graph is faster so (see :mod:`toolkit.nn.autotune`; the
            layout is not tried with ``compile=True``). The eager forward runs in the same
            race: unless a graph beats it by :data:`~toolkit.nn.autotune.EAGER_MARGIN`, calls
            of that input signature run the block eagerly (:attr:`graph_memory_format`
            ``"eager"``), so hybridizing never costs speed. The answers equal eager's up
            to float rounding; the first call takes longer by the measuring (decisions are
            kept on disk, see :func:`toolkit.nn.autotune.disk_cache`). ``False`` keeps
            PyTorch's own kernels and layout and always runs the graph, for results that
            are bitwise the same from run to run.
        lazy : bool, optional
            Autotune without delaying the first answer (default, unless ``TOOLKIT_AUTOTUNE_LAZY=0``):
            the first call of an input signature runs the block eagerly; the next one captures
            the graph (with the kernel decisions already known on this machine, aten's for the
            rest) and runs it; the measuring (kernels, the channels-last capture, the race against
            eager) is spread over the following calls of that signature, at most about
            :data:`~toolkit.nn.autotune.LAZY_BUDGET_S` seconds each, which then switch to the
            winner (:attr:`tuning_pending` tells when it is done). A signature whose decision
            is on disk is captured once, in the winning layout, and measures nothing. ``False``
            captures and measures everything in the first call. With ``compile=True`` (or
            ``autotune=False``) the first call captures, and kernels are tuned before compiling.
        inductor : bool, optional
            Inference on CPU (``eval()`` under ``no_grad``): also race the captured graph compiled by
            Inductor with frozen weights (:class:`~toolkit.nn.autotune.FrozenInductor`; BN folded,
            oneDNN weight prepacking, C++ wrapper), kept when it beats the other candidates by
            :data:`~toolkit.nn.autotune.MARGIN` and matches the graph's outputs up to float rounding.
            The compile is one step of the measuring (tens of seconds to minutes for a ResNet-50;
            the decision is kept on disk, the compile is not). Default (``None``): off, unless
            ``TOOLKIT_AUTOTUNE_INDUCTOR=1`` and a C++ compiler is found; ``True`` turns it on for this
            block, ``False`` off.
        openvino : bool, optional
            Likewise for the captured program converted and compiled by OpenVINO for this input shape
            (:class:`~toolkit.nn.autotune.FrozenOpenVINO`; float32, OpenVINO's own CPU kernels), for
            blocks whose inputs and outputs are tensors. Default (``None``): on where ``openvino`` is
            installed, unless ``TOOLKIT_AUTOTUNE_OPENVINO=0``; ``True`` turns it on for this block (a
            failed convert is then a warning, by default an INFO log), ``False`` off. Its convert and
            compile (1-4 s for the zoo's models on 2 cores) are one step of the measuring; the compiled
            model holds a copy of the weights (``benchmarks/results/openvino_zoo.txt``).

        Returns
        -------
        HybridBlock
            ``self``, so calls can be chained.
        """
        for module in self.modules():
            if isinstance(module, HybridBlock):
                module._hybrid_active = bool(active)
                module._hybrid_compile = bool(compile)
                module._hybrid_autotune = bool(autotune)
                module._hybrid_lazy = lazy
                module._hybrid_inductor = inductor
                module._hybrid_openvino = openvino
                module._clear_graphs()
        return self

    @property
    def hybridized(self) -> bool:
        return self._hybrid_active

    @property
    def graph(self) -> torch.fx.Graph | None:
        """The most recently used captured graph, or ``None`` before the first capture (and while
        the block runs eagerly, :attr:`graph_memory_format` ``"eager"``)."""
        program = self.exported_program
        return None if program is None else program.graph

    @property
    def exported_program(self) -> torch.export.ExportedProgram | None:
        """The ``torch.export.ExportedProgram`` behind :attr:`graph`."""
        return None if self._last_graph is None else self._last_graph.program

    @property
    def conv_kernels(self) -> list[Choice]:
        """The kernel autotuning chose for each convolution of the graph behind :attr:`graph`."""
        return [] if self._last_graph is None else list(self._last_graph.kernels)

    def same_outputs(self, out: Any, ref: Any) -> bool:
        """Whether ``out`` (a frozen-weight candidate's, see :meth:`hybridize`) answers as ``ref`` (the captured
        graph's) on the same inputs: equal up to float rounding, same structure, shapes and dtypes.

        A family whose outputs are discontinuous in the floats (a detector's ranked, suppressed boxes)
        overrides it with what "the same answer" means for it."""
        return _autotune._close(out, ref)

    @property
    def graph_memory_format(self) -> str | None:
        """How the last call ran: ``"channels_last"`` when autotuning found the graph faster on
        channels-last image inputs (they are converted on the way in), ``"eager"`` when the eager
        forward beat every captured graph on this input signature (the block then runs its own
        forward, see :meth:`hybridize`), ``"inductor"`` or ``"openvino"`` when the graph compiled by that
        backend with frozen weights won an inference race, ``"as_given"`` otherwise; ``None`` before the first capture."""
        return None if self._last_graph is None else self._last_graph.memory_format

    @property
    def tuning_pending(self) -> bool:
        """Whether lazy autotuning still has measuring left for the graph behind the last call
        (its later calls do it, see :meth:`hybridize`)."""
        return self._last_graph is not None and self._last_graph.tuning is not None

    @property
    def race_times(self) -> dict[str, float]:
        """Median seconds per candidate (``"as_given"``, ``"channels_last"``, ``"eager"``, ``"inductor"``, ``"openvino"``) of the
        capture-time race behind the last call, measured now or read back from the autotune cache;
        empty when there was no race (``autotune=False``, a single candidate)."""
        return {} if self._last_graph is None else dict(self._last_graph.race)

    def _clear_graphs(self) -> None:
        self._graphs = {}
        self._last_graph = None
        self._eval_programs = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickling and ``copy.deepcopy`` leave the captured graphs out: they are caches of this process (the
        graph modules ``torch.export`` builds hold local functions pickle refuses, a compiled OpenVINO model
        cannot be copied), captured again by the copy's next call, in the layouts decided on disk. The
        ``hybridize`` settings travel with the copy."""
        state = self.__dict__.copy()
        state.update(_graphs={}, _last_graph=None, _eval_programs={})
        return state

    def _apply(self, fn, *args, **kwargs):
        # .to(), .half(), .cuda() replace parameter tensors: captured graphs would
        # keep the old ones.
        for module in self.modules():
            if isinstance(module, HybridBlock):
                module._clear_graphs()
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if assign:  # new tensor objects: captured graphs would keep the old ones
            for module in self.modules():
                if isinstance(module, HybridBlock):
                    module._clear_graphs()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def __call__(self, *args, **kwargs):
        if (not self._hybrid_active or _capturing() or torch.compiler.is_compiling()
                or self._eager_only(args, kwargs)):
            return super().__call__(*args, **kwargs)
        return self._call_hybrid(args, kwargs)

    def _eager_only(self, args: tuple, kwargs: dict) -> bool:
        """Whether this call takes inputs no graph of the block can (a family overrides it): the block's own
        forward runs, its hybridized sub-blocks still run their graphs."""
        return False

    def _call_hybrid(self, args: tuple, kwargs: dict):
        key = _key(self.training, args, kwargs)
        flat = torch.utils._pytree.tree_leaves((args, kwargs))
        for graph in self._graphs.get(key, []):
            if graph.fits(flat) and graph.tuning is not None:
                if graph.tuning.step(args, kwargs, _autotune.LAZY_BUDGET_S):
                    graph.tuning = None
            if graph.fits(flat):  # again: a deferred capture may accept less than its stand-in
                try:
                    out = graph.runner(*args, **kwargs)
                except Exception as err:
                    if not _is_guard_failure(err):
                        raise
                    # The capture specialised on something its ranges do not show
                    # (e.g. nn.LSTM on the sequence length): never this graph for
                    # these shapes again, try the next one or capture anew.
                    graph.refused.add(_shapes(flat))
                    continue
                self._last_graph = graph
                return out
        graph = self._capture(args, kwargs)
        self._graphs.setdefault(key, []).append(graph)
        self._last_graph = graph
        return graph.runner(*args, **kwargs)

    # ------------------------------------------------------------------ capture
    def _axes_for(self, index: int, name: str | None, tensor: torch.Tensor) -> dict[int, str]:
        axes = self.dynamic_axes
        if axes and all(isinstance(k, str) for k in axes):
            axes = axes.get(name, {}) if name is not None else {}
        return {int(a): n for a, n in axes.items() if int(a) < tensor.dim()}

    def dynamic_shapes_for(self, args: tuple, kwargs: dict | None = None, auto: bool = True):
        """``dynamic_shapes`` for ``torch.export`` from :attr:`dynamic_axes`.

        With ``auto=True`` the axes are ``Dim.AUTO`` (the exporter may specialise
        them, and the captured graph then only accepts that size); otherwise
        named ``Dim`` objects shared by axes of the same name.
        """
        import inspect

        kwargs = kwargs or {}
        params = [
            p.name
            for p in inspect.signature(self.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        dims: dict[str, Any] = {}

        def dim(label: str):
            if auto:
                return torch.export.Dim.AUTO
            if label not in dims:
                dims[label] = torch.export.Dim(label)
            return dims[label]

        def spec(i, name, value):
            if isinstance(value, torch.Tensor):
                # torch.export specialises sizes 0 and 1 anyway; saying so avoids its warning
                axes = {a: n for a, n in self._axes_for(i, name, value).items() if not (auto and value.shape[a] <= 1)}
                return {a: dim(n) for a, n in axes.items()} or None
            # torch.export wants the structure of a container argument (an LSTM's list of (h, c)
            # states): each tensor inside gets the argument's axes
            if isinstance(value, (list, tuple)):
                specs = [spec(i, name, v) for v in value]
                return type(value)(*specs) if _is_namedtuple(value) else type(value)(specs)
            if isinstance(value, dict):
                return {k: spec(i, name, v) for k, v in value.items()}
            return None

        arg_specs = tuple(spec(i, params[i] if i < len(params) else None, v) for i, v in enumerate(args))
        kw_specs = {k: spec(-1, k, v) for k, v in kwargs.items()}
        return arg_specs, kw_specs

    def _tunes_backward(self, args: tuple, kwargs: dict) -> bool:
        """Whether autotuning times backward kernels too: only for a graph that will train, i.e. with
        gradients enabled and the block in training mode or an input asking for its gradient. An
        eval-mode block outside ``no_grad`` (feature extraction, a quick check) runs forward only."""
        if not torch.is_grad_enabled():
            return False
        return self.training or any(isinstance(v, torch.Tensor) and v.requires_grad
                                    for v in torch.utils._pytree.tree_leaves((args, kwargs)))

    def _lazy(self) -> bool:
        return (lazy_enabled() if self._hybrid_lazy is None else self._hybrid_lazy) and not self._hybrid_compile

    def _capture(self, args: tuple, kwargs: dict) -> _Graph:
        backward = self._tunes_backward(args, kwargs)
        if not self._hybrid_autotune:
            return self._capture_as_given(args, kwargs, backward)
        flat = torch.utils._pytree.tree_leaves((args, kwargs))
        # The eager forward races the graphs on CPU (timing on an accelerator would need its syncs).
        race_eager = eager_fallback_enabled() and all(v.device.type == "cpu" for v in flat
                                                      if isinstance(v, torch.Tensor))
        converted = channels_last_inputs(args, kwargs) if not self._hybrid_compile else None
        race_frozen = self._frozen_paths(backward, flat)
        # A race decided on this machine before (same structure, inputs and mode) is not run again, and
        # the graphs it lost are not captured at all (see toolkit.nn.autotune.disk_cache). Graph-only
        # races keep the key they always had; races with eager (and torch.compile) have keys of their own.
        key = None
        if converted is not None or race_eager or race_frozen:
            key = layout_key(self, args, kwargs, backward)
            autocast = _autocast_state()  # a race under autocast times its dtype: a decision of its own
            key += f" autocast {autocast!r}" if autocast else ""
            key += (" eager" if race_eager else "") + (" compile" if self._hybrid_compile else "")
            # " r2": decisions of frozen races stored before stop 27 timed the frozen graph's fallback
            # (see autotune._no_trace); their keys, without it, are left unread
            key += "".join(f" {name}" for name in race_frozen) + (" r2" if race_frozen else "")
        known = cached_decision(key) if key is not None else None
        path = None if known is None else known["memory_format"]
        if path == "eager" and race_eager:
            accepts = _accepts_from_json(known.get("accepts"))
            graph = _Graph(program=None, runner=_EagerRunner(self), memory_format="eager",
                           accepts=accepts if accepts is not None else _exact_accepts(flat))
            if not graph.fits(flat):
                graph.accepts = _exact_accepts(flat)
            graph.race = _race_times(known)
            _log.debug("%s: eager for this input signature (autotune cache: %s)", type(self).__name__, graph.race)
            return graph
        # The best memory layout is a property of the whole network and the machine (see
        # toolkit.nn.autotune): a channels-last graph is captured, tuned and raced as well, and the
        # faster kept. torch.compile makes layout choices of its own. And a graph is not always faster
        # than the eager module (Python overhead saved vs. kernels eager picks better): eager races too.
        race_layout = known is None and converted is not None
        if self._lazy():
            # Time to first answer: this call runs the block's own forward; torch.export (several
            # times an eager call) is the first step of the measuring queue, in the next call.
            graph = _Graph(program=None, runner=_EagerRunner(self), memory_format="eager",
                           accepts=[None if not isinstance(v, torch.Tensor) else ((0, math.inf),) * v.dim()
                                    for v in flat])
            graph.tuning = _LazyTuning(self, graph, key, race_layout=race_layout, race_eager=known is None and race_eager,
                                       backward=backward, lazy=True, defer=path,
                                       race_frozen=race_frozen if known is None else ())
            return graph
        graph = self._capture_path(args, kwargs, path, backward)
        if known is not None:
            graph.race = _race_times(known)
        tuning = _LazyTuning(self, graph, key, race_layout=race_layout, race_eager=known is None and race_eager,
                             backward=backward, lazy=False, race_frozen=race_frozen if known is None else ())
        if tuning.pending():
            tuning.step(args, kwargs, float("inf"))
        return graph

    def _capture_path(self, args: tuple, kwargs: dict, path: str | None, backward: bool) -> _Graph:
        """A graph in the layout ``path`` stored for this signature (as given when none), with the
        race medians stored with it."""
        converted = channels_last_inputs(args, kwargs) if path == "channels_last" else None
        if converted is not None:
            graph = self._capture_channels_last(converted, backward)
        else:
            graph = self._capture_as_given(args, kwargs, backward)
        if path in FROZEN_PATHS and path in self._frozen_paths(backward, torch.utils._pytree.tree_leaves((args, kwargs))):
            frozen = self._freeze(graph, args, kwargs, path)
            if frozen is not None:
                return frozen
        return graph

    def _frozen_paths(self, backward: bool, flat: Sequence[Any]) -> tuple[str, ...]:
        """The frozen-weight candidates (of :data:`~toolkit.nn.autotune.FROZEN_PATHS`) an inference race
        includes: none with gradients recording, in training mode, off CPU, or with ``compile=True``."""
        if not (self._hybrid_autotune and not self._hybrid_compile and not backward and not self.training
                and not torch.is_grad_enabled()
                and all(v.device.type == "cpu" and not v.requires_grad for v in flat if isinstance(v, torch.Tensor))):
            return ()
        wanted = {"inductor": inductor_enabled() if self._hybrid_inductor is None else self._hybrid_inductor,
                  "openvino": openvino_enabled() if self._hybrid_openvino is None else self._hybrid_openvino}
        return tuple(name for name in FROZEN_PATHS if wanted[name])

    def _freeze(self, graph: _Graph, args: tuple, kwargs: dict, path: str = "inductor") -> _Graph | None:
        """``graph`` compiled with frozen weights by the backend of ``path`` (``"inductor"``, ``"openvino"``),
        for these inputs' shapes (``None`` when the compile fails or its output differs from the graph's
        beyond float rounding)."""
        backend = FROZEN_BACKENDS[path].backend
        # asked for (hybridize(openvino=True), the variable on): a failure is worth a warning; in a default
        # race it only costs the speed-up, and models with operators OpenVINO cannot convert would warn
        # at every new input signature
        asked = getattr(self, f"_hybrid_{path}") is True or _autotune.frozen_requested(path)
        level = logging.WARNING if asked else logging.INFO
        fits, weights, free = _autotune.frozen_fits_memory(self)
        if not fits:
            _log.log(level, "%s: %s candidate left out: its copy of the weights (%.0f MiB) would not fit in the "
                     "%.0f MiB available", type(self).__name__, backend, weights / 2**20, (free or 0) / 2**20)
            return None
        try:
            with torch.no_grad():
                frozen = FROZEN_BACKENDS[path](graph.program, self, graph.runner, args, kwargs)
                same = self.same_outputs(frozen(*args, **kwargs), graph.runner(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - a failed compile only costs the speed-up
            # first and last lines: OpenVINO's reports put the unconverted ops at the end
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [""]
            _log.log(level, "%s: %s compile failed (%s: %s); keeping the captured graph", type(self).__name__,
                     backend, type(err).__name__, lines[0] + (f" ... {lines[-1]}" if len(lines) > 1 else ""))
            return None
        if not same:
            _log.log(level, "%s: %s's frozen graph differs from the captured one beyond float rounding; "
                     "not used", type(self).__name__, backend)
            return None
        return _Graph(program=graph.program, runner=frozen, accepts=list(graph.accepts), memory_format=path)

    def _capture_channels_last(self, converted: tuple[tuple, dict], backward: bool) -> _Graph:
        alt = self._capture_as_given(*converted, backward)
        alt.runner = ChannelsLastInputs(alt.runner)
        alt.memory_format = "channels_last"
        return alt

    def _capture_as_given(self, args: tuple, kwargs: dict, backward: bool | None = None) -> _Graph:
        arg_specs, kw_specs = self.dynamic_shapes_for(args, kwargs)
        dynamic_shapes = (arg_specs, kw_specs) if kwargs else arg_specs
        if kwargs:
            # torch.export takes dynamic_shapes keyed like forward's signature
            import inspect

            names = list(inspect.signature(self.forward).parameters)
            dynamic_shapes = {names[i]: s for i, s in enumerate(arg_specs)} | kw_specs
        # An evaluation graph is the same with and without gradients recording (checked on ResNets):
        # the first no_grad call after a grad-enabled one reuses that capture instead of exporting again.
        reuse_key = None
        if not self.training:
            layouts = tuple(_channels_last_flag(v) for v in torch.utils._pytree.tree_leaves((args, kwargs)))
            # exact shapes: a new capture for other sizes (a guard the first one failed) must be a new export
            reuse_key = (_key(False, args, kwargs)[3:], layouts, _shapes(torch.utils._pytree.tree_leaves((args, kwargs))))
        program = self.__dict__.get("_eval_programs", {}).get(reuse_key) if reuse_key is not None else None
        if program is None:
            program = self._export_program(args, kwargs, dynamic_shapes)
            if reuse_key is not None:  # looked up after export, which puts back copies of the module's attributes
                self.__dict__.setdefault("_eval_programs", {})[reuse_key] = program
        runner = program.module()
        if not self.training and not torch.is_grad_enabled():
            # inference graph: batch norms folded into their convolutions (refolded when weights change)
            runner = fold_for_inference(runner)
        kernels: list[Choice] = []
        tuner = None
        # kernels are timed in the graph's own dtype: under autocast they would run in another, so aten
        # keeps choosing there (the layout and eager races still run, in the autocast dtype)
        if self._hybrid_autotune and not _autocast_state():
            graph_module = runner.module if isinstance(runner, FoldedGraph) else runner
            if backward is None:
                backward = self._tunes_backward(args, kwargs)
            # the decisions known on this machine at once; the others measured by _LazyTuning, or
            # now where torch.compile follows (it would not see a later rewrite)
            tuner = ConvTuner(graph_module, backward=backward)
            kernels = tuner.run() if self._hybrid_compile else tuner.apply()
        if self._hybrid_compile:
            if isinstance(runner, FoldedGraph):
                runner.module = torch.compile(runner.module, dynamic=True)
            else:
                runner = torch.compile(runner, dynamic=True)
        accepts: list[tuple | None] = []
        user_inputs = set(program.graph_signature.user_inputs)
        for node in program.graph.nodes:
            if node.op == "placeholder" and node.name in user_inputs:
                val = node.meta.get("val")
                if isinstance(val, torch.Tensor):
                    accepts.append(tuple(_sym_range(program, s) for s in val.shape))
                else:
                    accepts.append(None)
        return _Graph(program=program, runner=runner, accepts=accepts, kernels=kernels,
                      conv_tuner=tuner if tuner is not None and tuner.pending else None)

    def _export_program(self, args: tuple, kwargs: dict, dynamic_shapes) -> torch.export.ExportedProgram:
        """Run ``torch.export`` and name the sub-module that breaks it, if any."""
        stack: list[str] = []
        names = {id(m): n for n, m in self.named_modules()}

        def pre(module, _inputs):
            if id(module) in names:
                stack.append(names[id(module)])

        def post(module, _inputs, _output):
            if id(module) in names and stack:
                stack.pop()

        h1 = nn.modules.module.register_module_forward_pre_hook(pre)
        h2 = nn.modules.module.register_module_forward_hook(post)
        try:
            # the graph is captured in the module's own dtypes: an ambient torch.autocast applies when it runs
            with _capture_scope(), torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
                return torch.export.export(self, args, kwargs or None, dynamic_shapes=dynamic_shapes, strict=False)
        except Exception as err:  # noqa: BLE001 - re-raised with the block that failed
            # the innermost module still running when the capture failed
            path = stack[-1] if stack else ""
            kind = type(self.get_submodule(path)).__name__
            where = f"sub-block '{path}' ({kind})" if path else f"block {kind}"
            raise HybridizeError(
                f"cannot capture {type(self).__name__} as a graph: {where} failed during torch.export: "
                f"{type(err).__name__}: {err}".strip(),
                block_path=path,
                block_type=kind,
            ) from err
        finally:
            h1.remove()
            h2.remove()

    # ------------------------------------------------------------------ export
    def eager_scope(self) -> contextlib.AbstractContextManager:
        """A context in which calls run the eager module: no graph is captured, tuned or used.

        :func:`toolkit.deploy.export.export_block` computes its reference output in it, so
        exporting a hybridized block does not capture a graph the export never uses.
        """
        return _capture_scope()

    def export_spec(self, example_inputs: Sequence[torch.Tensor]) -> "ExportSpec":
        """What :func:`toolkit.deploy.export.export_block` needs to know about the dynamic dimensions.

        Parameters
        ----------
        example_inputs : sequence of Tensor
            The positional inputs the export is traced with.

        Returns
        -------
        ExportSpec
            Per input, the dynamic axes (from :attr:`dynamic_axes`) and the matching
            ``torch.export`` ``dynamic_shapes`` (named ``Dim`` objects shared by axes of the
            same name).
        """
        import inspect

        example_inputs = tuple(example_inputs)
        params = [
            p.name
            for p in inspect.signature(self.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        axes = [self._axes_for(i, params[i] if i < len(params) else None, t) for i, t in enumerate(example_inputs)]
        return ExportSpec(axes=axes, dynamic_shapes=self.dynamic_shapes_for(example_inputs, auto=False)[0])

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """Inputs used to trace :meth:`export` when none are given.

        The default builds one float tensor of shape ``(batch_size, *metadata["input_shape"])``.
        Text blocks override this.
        """
        shape = self.metadata.get("input_shape")
        if not shape:
            raise ValueError(
                f"{type(self).__name__} has no metadata['input_shape']; pass example_inputs to export()"
            )
        return (torch.randn(batch_size, *shape),)

    def export(
        self,
        prefix: str,
        example_inputs: Sequence[torch.Tensor] | None = None,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Write ``prefix.onnx`` (graph and weights) and ``prefix.json`` (metadata).

        See :func:`toolkit.deploy.export.export_block` for the parameters and the
        metadata written. Returns the metadata dict.
        """
        from ..deploy.export import export_block

        return export_block(
            self,
            prefix,
            example_inputs=example_inputs,
            input_names=input_names,
            output_names=output_names,
            metadata=metadata,
            check=check,
        )
