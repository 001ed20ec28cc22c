"""How a function question's answer is checked: called on drawn inputs with the package's reference withheld.

One copy of this logic serves both places that decide a function question (DESIGN.md section 5):

- the check cell, through :meth:`unlearnlab.lessons.base.Lesson.answer_conditions`, in the student's kernel;
- the grader, which runs :func:`observe_call` on the answer in a sandboxed probe process
  (``unlearnlab.course.probe``) and on the reference in its own process, then calls :func:`differences`.

While an answer runs, :func:`withheld` replaces the reference's code by a stub that raises
"Qn asks you to write this yourself", so an answer that calls the reference, an alias of it, or the same function
reached through ``importlib`` or ``getattr`` fails; a profile hook also stops a copy of the reference's code object
(``types.FunctionType(ref.__code__, ...)``, or the module loaded afresh from its file).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..models import build_model
from ..training import seeded

if TYPE_CHECKING:
    from .base import FunctionQuestion

MODEL_KEY = "__model__"  # a case argument {"__model__": name, "seed": s} stands for a freshly built model
WITHHELD = "{label} asks you to write this yourself: the package's {name} is withheld while your answer runs"


def model_arg(name: str, seed: int) -> dict:
    """A case argument that :func:`materialise` turns into ``build_model(name)`` initialised with ``seed``."""
    return {MODEL_KEY: name, "seed": seed}


# ----------------------------------------------------------------------------------------------------------
# Observing a call


def materialise(value: Any) -> Any:
    """A case argument as the function receives it: a copy, with model placeholders built."""
    if isinstance(value, dict) and MODEL_KEY in value:
        with seeded(value["seed"]):  # the caller's RNG is left as it was
            return build_model(value[MODEL_KEY])
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: materialise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(materialise(v) for v in value)
    return value


def observe(value: Any) -> Any:
    """Plain data describing ``value``: tensors detached to the CPU, a model as its ``requires_grad`` flags."""
    if isinstance(value, nn.Module):
        return {"requires_grad": {n: bool(p.requires_grad) for n, p in value.named_parameters()}}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {str(k): observe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [observe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"unsupported type": type(value).__name__}


def observe_call(fn: Callable, case: dict) -> dict:
    """Call ``fn(*args, **kwargs)`` on fresh copies of the case's inputs; return the result, the inputs afterwards
    (to catch in-place changes) and, for ``case["grad"]`` indices, the gradient of the result w.r.t. those inputs."""
    args = [materialise(a) for a in case["args"]]
    kwargs = {k: materialise(v) for k, v in case.get("kwargs", {}).items()}
    grad_of = case.get("grad", [])
    for i in grad_of:
        args[i].requires_grad_(True)
    result = fn(*args, **kwargs)
    observed = {"result": observe(result), "args": [observe(a) for a in args]}
    if grad_of:
        if not isinstance(result, torch.Tensor) or result.dim() != 0 or not result.requires_grad:
            observed["grads"] = None
        else:
            result.backward()
            observed["grads"] = [
                observe(args[i].grad if args[i].grad is not None else torch.zeros_like(args[i])) for i in grad_of
            ]
    return observed


def observe_answer(fn: object, name: str, cases: list[dict]) -> list[dict]:
    """What ``fn`` does on each case; an error (or ``fn`` not being a function) is recorded as that case's outcome."""
    observations = []
    for case in cases:
        try:
            if not callable(fn):
                raise NameError(f"the answer cell does not define a function {name!r}")
            observations.append(observe_call(fn, case))
        except Exception as err:  # a wrong answer may raise anything: record it as this case's outcome
            observations.append({"error": f"{type(err).__name__}: {err}"})
    return observations


def reference_observations(question: FunctionQuestion, cases: list[dict]) -> list[dict]:
    """What the package's reference does on each case (released for the time, should it be withheld)."""
    with released(question.reference, *question.equivalents):
        return [observe_call(question.reference, case) for case in cases]


# ----------------------------------------------------------------------------------------------------------
# Comparing with the reference


def compare_value(expected: Any, observed: Any, question: FunctionQuestion, where: str) -> str | None:
    """``None`` when ``observed`` matches ``expected`` within the question's tolerances, else where it differs."""
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(expected, observed, question, where)
    if isinstance(expected, float) and isinstance(observed, (int, float, torch.Tensor)):
        value = float(observed) if not isinstance(observed, torch.Tensor) or observed.numel() == 1 else None
        ok = value is not None and abs(value - expected) <= question.atol + question.rtol * abs(expected)
        return None if ok else f"{where}: expected {expected:.6g}, got {observed if value is None else f'{value:.6g}'}"
    if isinstance(expected, dict):
        if not isinstance(observed, dict) or set(observed) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)}"
        return next(
            (d for k in expected if (d := compare_value(expected[k], observed[k], question, f"{where}[{k!r}]"))), None
        )
    if isinstance(expected, list):
        if not isinstance(observed, list) or len(observed) != len(expected):
            return f"{where}: expected a list of {len(expected)}"
        pairs = enumerate(zip(expected, observed))
        return next((d for i, (e, o) in pairs if (d := compare_value(e, o, question, f"{where}[{i}]"))), None)
    return None if observed == expected and type(observed) is type(expected) else f"{where}: wrong value"


def _compare_tensor(expected: torch.Tensor, observed: Any, question: FunctionQuestion, where: str) -> str | None:
    if not isinstance(observed, torch.Tensor):
        return f"{where}: expected a tensor, got {type(observed).__name__}"
    if observed.shape != expected.shape:
        return f"{where}: expected shape {tuple(expected.shape)}, got {tuple(observed.shape)}"
    if not expected.is_floating_point():  # labels and masks: exact, and a mask must be bool
        kind_ok = observed.dtype == torch.bool if expected.dtype == torch.bool else not observed.is_floating_point()
        if not kind_ok:
            return f"{where}: expected dtype {expected.dtype}, got {observed.dtype}"
        wrong = int((observed.to(expected.dtype) != expected).sum())
        return None if wrong == 0 else f"{where}: {wrong} of {expected.numel()} entries differ"
    if not observed.is_floating_point():
        return f"{where}: expected floating-point values, got {observed.dtype}"
    close = torch.isclose(observed.double(), expected.double(), question.rtol, question.atol, equal_nan=True)
    if bool(close.all()):
        return None
    worst = float((observed.double() - expected.double()).abs().nan_to_num(float("inf")).max())
    return f"{where}: {int((~close).sum())} of {expected.numel()} values differ (largest difference {worst:.3g})"


PARTS = (
    ("result", "returns the right result"),
    ("args", "changes none of its inputs in place"),
    ("grads", "has the right gradient (keep the computation differentiable)"),
)


def _first_differences(question: FunctionQuestion, expected: list[dict], observed: Any) -> dict[str, tuple[int, str]]:
    """Per part that differs (``"runs"`` or one of :data:`PARTS`), the first input where it does and how."""
    if not isinstance(observed, list) or len(observed) != len(expected):
        return {"runs": (0, "the answer could not be called on the grading inputs")}
    found: dict[str, tuple[int, str]] = {}
    for n, (want, got) in enumerate(zip(expected, observed), start=1):
        if not isinstance(got, dict) or "error" in got:
            error = got.get("error") if isinstance(got, dict) else "no result"
            found.setdefault("runs", (n, f"on input {n}, {question.function} raised {error}"))
            continue
        if question.unordered_result and isinstance(got.get("result"), list):
            got = {**got, "result": sorted(got["result"], key=str)}
            want = {**want, "result": sorted(want["result"], key=str)}
        for part, _ in PARTS:
            diff = (
                None
                if part not in want or part in found
                else compare_value(want[part], got.get(part), question, f"on input {n}")
            )
            if diff:
                found[part] = (n, diff)
    return {"runs": found["runs"]} if "runs" in found else found  # a case that raised says nothing of the rest


def differences(question: FunctionQuestion, expected: list[dict], observed: Any) -> dict[str, str | None]:
    """Per part (``"runs"``, then each of :data:`PARTS` the reference records), the first difference or ``None``."""
    found = _first_differences(question, expected, observed)
    parts = ["runs"] if "runs" in found else ["runs", *(p for p, _ in PARTS if any(p in want for want in expected))]
    return {part: found[part][1] if part in found else None for part in parts}


def compare_observations(question: FunctionQuestion, expected: list[dict], observed: Any) -> str | None:
    """``None`` when every case matches the reference, else a hint naming the first difference (in input order)."""
    found = _first_differences(question, expected, observed)
    if not found:
        return None
    part, (_, diff) = min(found.items(), key=lambda item: item[1][0])
    return f"{question.function} {dict(PARTS, runs='runs')[part]}? not yet: {diff}"


# ----------------------------------------------------------------------------------------------------------
# Withholding the reference


def _function_of(reference: Callable) -> types.FunctionType | None:
    """The plain Python function behind ``reference`` (through partials, bound methods and ``functools.wraps``)."""
    seen = reference
    for _ in range(8):
        if isinstance(seen, types.FunctionType):
            return seen
        seen = getattr(seen, "func", None) or getattr(seen, "__func__", None) or getattr(seen, "__wrapped__", None)
        if seen is None:
            return None
    return None


def _stub_code(message: str, freevars: tuple[str, ...]) -> types.CodeType:
    """A code object that raises ``RuntimeError(message)``, with ``freevars`` (so it fits the function's closure)."""
    names = "".join(f"    {v} = None\n" for v in freevars)
    uses = f"        ({', '.join(freevars)},)\n" if freevars else ""  # after the raise: never evaluated
    source = f"def outer():\n{names}    def stub(*args, **kwargs):\n        raise RuntimeError({message!r})\n{uses}"
    source += "    return stub\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<withheld>", "exec"), namespace)
    return namespace["outer"]().__code__


def _is_copy(code: types.CodeType, original: types.CodeType) -> bool:
    """Whether ``code`` is ``original`` or a copy of it (same bytecode, constants, names and file)."""
    return code is original or (
        code.co_filename == original.co_filename
        and code.co_code == original.co_code
        and code.co_consts == original.co_consts
        and code.co_names == original.co_names
    )


def reference_path(reference: Callable) -> str | None:
    """``"module:qualname"`` of the function behind ``reference``, for a process that must withhold it too (the
    grader's probe); ``None`` when it cannot be imported by name (a lambda or a local function)."""
    fn = _function_of(reference)
    if fn is None or "<" in fn.__qualname__:
        return None
    return f"{fn.__module__}:{fn.__qualname__}"


def resolve_reference(path: str) -> Callable:
    """The function a :func:`reference_path` names."""
    module, _, qualname = path.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


_WITHHELD: dict[types.FunctionType, tuple[types.CodeType, types.CodeType]] = {}  # fn -> (its code, the stub)


@contextlib.contextmanager
def released(*references: Callable) -> Iterator[None]:
    """Inside a :func:`withheld` block, the references as they are, for the package's own use (the expected
    results); elsewhere a no-op."""
    held = [fn for fn in map(_function_of, references) if fn in _WITHHELD]
    hook = sys.getprofile()
    sys.setprofile(None)
    for fn in held:
        fn.__code__ = _WITHHELD[fn][0]
    try:
        yield
    finally:
        for fn in held:
            fn.__code__ = _WITHHELD[fn][1]
        sys.setprofile(hook)


@contextlib.contextmanager
def withheld(references: Sequence[Callable], label: str) -> Iterator[None]:
    """While open, each of ``references`` (the package's answer to question ``label``, e.g. "Q1", and the package's
    other functions that compute it) raises "Q1 asks you to write this yourself", however the caller reached it;
    on exit they work again."""
    with contextlib.ExitStack() as stack:
        for reference in references:
            stack.enter_context(_withheld_one(reference, label))
        yield


@contextlib.contextmanager
def _withheld_one(reference: Callable, label: str) -> Iterator[None]:
    """:func:`withheld` for one function: its code swapped for a stub, and a profile hook against its copies."""
    fn = _function_of(reference)
    if fn is None:  # a builtin or a callable object: nothing to swap
        yield
        return
    original = fn.__code__
    message = WITHHELD.format(label=label, name=fn.__name__)

    def guard(frame: types.FrameType, event: str, arg: object) -> None:
        if previous is not None:
            previous(frame, event, arg)
        if event == "call" and _is_copy(frame.f_code, original):
            raise RuntimeError(message)

    if fn in _WITHHELD:  # already withheld by an enclosing block
        yield
        return
    previous = sys.getprofile()  # an enclosing function's guard: kept, and called first
    _WITHHELD[fn] = (original, _stub_code(message, original.co_freevars))
    fn.__code__ = _WITHHELD[fn][1]
    sys.setprofile(guard)
    try:
        yield
    finally:
        sys.setprofile(previous)
        fn.__code__ = original
        del _WITHHELD[fn]
