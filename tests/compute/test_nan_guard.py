"""NaN guards: a NaN's bits never reach memory or an integer uncanonicalised, the rewrite
leaves everything else alone, and the decoder behind it is strict and never crashes.

The engine runs without Cranelift's NaN canonicalisation; ``check_module`` adds a guard
before each instruction that can observe a NaN's bits (``compute.nan_guard``).
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasmtime import Engine, Module

from compute.demo import RENDER_WASM
from compute.errors import ModuleRejectedError
from compute.limits import Limits
from compute.module_check import check_module
from compute.nan_guard import (
    BYTE,
    F32,
    GUARD_LENGTH,
    OBSERVERS,
    OP_LOCAL_TEE,
    OP_SELECT,
    PREFIXED_LAYOUT,
    RAW,
    SIGNED,
    SINGLE_LAYOUT,
    UNSIGNED,
    VALUE_TYPES,
    Imm,
    Instruction,
    decode_instructions,
    decode_module,
    encode_instruction,
    encode_module,
    guard_nans,
    write_unsigned,
)
from compute.sandbox import run_unit
from compute.unit import StopReason, Unit
from compute.worker import Sandbox

from .support import FD_WRITE, command, run, wasm, write_out
from .test_sandbox import ARGS_AND_ENVIRONMENT, ECHO, ERRNO_PROBE, NAN_BITS, RANDOM

HEADER = b"\0asm\x01\0\0\0"
CANONICAL_F32 = 0x7FC00000
CANONICAL_F64 = 0x7FF8000000000000

# Each line stores what one way of making or observing a NaN gives; the last lines store
# ordinary values, which the guards must leave alone (-0, -inf, -1.5, copysign(1, -0)).
NON_CANONICAL_NANS = command(imports=FD_WRITE, extra="""
    (func $negate (param f32) (result f32) (f32.neg (local.get 0)))""", body="""
    (local $x f32)
    (f32.store (i32.const 256) (f32.neg (f32.const nan)))
    (f64.store (i32.const 264) (f64.div (f64.const 0) (f64.const 0)))
    (i32.store (i32.const 512) (i32.const 0x7fa00001))
    (i32.store (i32.const 272) (i32.reinterpret_f32 (f32.load (i32.const 512))))
    (i64.store (i32.const 280) (i64.reinterpret_f64 (f64.neg (f64.const nan:0x4))))
    (f32.store (i32.const 288) (f32.add (f32.const -nan:0x12345) (f32.const 1)))
    (f32.store (i32.const 292) (f32.copysign (f32.const 1) (f32.const -nan)))
    (f64.store (i32.const 296) (f64.copysign (f64.const 2) (f64.neg (f64.const nan))))
    (local.set $x (call $negate (f32.const nan:0x200000)))
    (f32.store (i32.const 304) (local.get $x))
    (f32.store (i32.const 308) (f32.const -0))
    (f64.store (i32.const 312) (f64.const -inf))
    (f64.store (i32.const 320) (f64.div (f64.const -3) (f64.const 2)))
    (f32.store (i32.const 328) (f32.copysign (f32.const 1) (f32.const -0)))""" + write_out(256, 76))
LAYOUT = "<I4xQI4xQIIQIIQQI"
EXPECTED = (
    CANONICAL_F32,  # f32.neg of a NaN: its sign bit set, then canonicalised when stored
    CANONICAL_F64,  # 0/0: the CPU's default NaN (negative on x86)
    CANONICAL_F32,  # a signalling NaN with a payload, loaded and reinterpreted
    CANONICAL_F64,  # a negative NaN with a payload, reinterpreted
    CANONICAL_F32,  # arithmetic on a NaN with a payload (which payload survives is the CPU's)
    0x3F800000,  # copysign(1, -nan): the sign of a canonical NaN, positive
    0x4000000000000000,  # copysign(2, -nan), f64
    CANONICAL_F32,  # a negative NaN through a call and a local
    0x80000000,  # -0.0
    0xFFF0000000000000,  # -inf
    0xBFF8000000000000,  # -1.5
    0xBF800000,  # copysign(1, -0) = -1
)


def unguarded(engine: Engine, module: bytes) -> bytes:
    """The module run WITHOUT its guards (compiled around check_module): the control."""
    unit = Unit(job_id="job-1", unit_id="unit-1", input=b"", fuel=10_000_000)
    return run_unit(engine, Module(engine, module), unit, Limits(wall_seconds=10.0)).output


def test_every_nan_a_program_can_observe_comes_out_canonical(engine: Engine) -> None:
    result = run(engine, NON_CANONICAL_NANS)
    assert (result.stop, result.exit_status) == (StopReason.EXIT, 0)
    assert struct.unpack(LAYOUT, result.output) == EXPECTED


def test_without_the_guards_the_engine_would_leak_nan_bits(engine: Engine) -> None:
    # The control: the engine itself does not canonicalise, so these bits (which do not
    # depend on the CPU: negation and copysign are bit operations) leak unguarded.
    leaked = struct.unpack(LAYOUT, unguarded(engine, NON_CANONICAL_NANS))
    assert leaked[0] == 0xFFC00000
    assert leaked[5] == 0xBF800000
    assert leaked[2] == 0x7FA00001
    assert leaked[8:] == EXPECTED[8:]


def test_a_worker_runs_the_guarded_module_from_its_cache(sandbox: Sandbox) -> None:
    module = sandbox.prepare(NON_CANONICAL_NANS)
    unit = Unit(job_id="job-1", unit_id="unit-1", input=b"", fuel=10_000_000)
    first = sandbox.run(module, unit)  # compiled by prepare, loaded from the cache
    second = sandbox.run(module, unit)
    assert struct.unpack(LAYOUT, first.output) == EXPECTED
    assert first.agreement == second.agreement
    assert module.wasm_path.read_bytes() == NON_CANONICAL_NANS  # the customer's bytes


def test_the_existing_nan_test_module_is_guarded_at_both_stores() -> None:
    report = guard_nans(NAN_BITS)
    assert (report.guards, report.functions) == (2, 1)


@pytest.mark.parametrize(("op", "value_type"), sorted(OBSERVERS.items()))
def test_each_observing_instruction_gets_a_guard_just_before_it(op: int, value_type: int) -> None:
    name = {0x38: "f32.store", 0x39: "f64.store", 0xBC: "i32.reinterpret_f32",
            0xBD: "i64.reinterpret_f64", 0x98: "f32.copysign",
            0xA6: "f64.copysign"}[op]  # fmt: skip
    kind = "f32" if value_type == F32 else "f64"
    operands = {"store": "(i32.const 0) (local.get 1)",
                "reinterpret": "(local.get 1)",
                "copysign": "(local.get 1) (local.get 1)"}  # fmt: skip
    family = name.split(".")[1].split("_")[0]
    body = f"({name} {operands[family]})"
    if family != "store":
        body = f"(drop {body})"
    module = wasm(f"""(module (memory 1)
        (func (param i32 {kind}) (local i64 i32 i32) {body}))""")
    report = guard_nans(module)
    assert report.guards == 1
    (body_after,) = decode_module(report.wasm).code.bodies  # type: ignore[union-attr]
    ops = [instruction.op for instruction in body_after.code]
    at = ops.index(op)
    guard = body_after.code[at - GUARD_LENGTH : at]
    scratch = 2 + 3  # after the two parameters and the three locals
    assert [i.op for i in guard] == [OP_LOCAL_TEE, 0x43 if value_type == F32 else 0x44, 0x20, 0x20,
                                     0x5B if value_type == F32 else 0x61, OP_SELECT]  # fmt: skip
    assert guard[0].imms[0].value == scratch
    assert body_after.locals[-1].type == value_type
    Module.validate(Engine(), report.wasm)


def test_guard_fuel_is_six_instructions_a_guard_the_same_everywhere(engine: Engine) -> None:
    stores = "".join(f"(f64.store (i32.const {8 * i}) (f64.sqrt (f64.const {i})))"
                     for i in range(10))  # fmt: skip
    module = command(body=stores)
    guarded = run(engine, module, fuel=1_000_000)
    # the same module without its guards, compiled around check_module
    unit = Unit(job_id="job-1", unit_id="unit-1", input=b"", fuel=1_000_000)
    plain = run_unit(engine, Module(engine, module), unit, Limits(wall_seconds=10.0))
    assert guarded.fuel_consumed - plain.fuel_consumed == 10 * GUARD_LENGTH
    assert run(engine, module, fuel=1_000_000).agreement == guarded.agreement


def test_a_module_that_observes_no_float_is_left_byte_for_byte() -> None:
    for module in (ECHO, RANDOM, ERRNO_PROBE):
        report = guard_nans(module)
        assert (report.wasm, report.guards) == (module, 0)


def test_a_guard_in_unreachable_code_still_validates(engine: Engine) -> None:
    module = command(body="(return) (f32.store (i32.const 0) (f32.const 1))")
    result = run(engine, module)
    assert (result.stop, result.exit_status) == (StopReason.EXIT, 0)


def test_simd_is_refused_with_a_clear_message(engine: Engine) -> None:
    module = wasm("""(module (memory (export "memory") 1)
        (func (export "_start")
          (v128.store (i32.const 0) (f32x4.neg (v128.const f32x4 nan nan nan nan)))))""")
    with pytest.raises(ModuleRejectedError, match=r"SIMD.*-msimd128"):
        check_module(engine, module, max_bytes=1 << 20)
    with pytest.raises(ModuleRejectedError, match=r"SIMD \(v128 instructions\)"):
        guard_nans(module)  # the decoder refuses it too, on its own


def test_the_demo_renderer_has_no_simd_and_is_guarded(engine: Engine) -> None:
    report = guard_nans(RENDER_WASM.read_bytes())
    assert report.guards > 0
    check_module(engine, RENDER_WASM.read_bytes(), max_bytes=8 << 20)


# --- the decoder and encoder: round trips ------------------------------------------------

EVERY_FAMILY = wasm("""(module
    (type $pair (func (param i32) (result i32 i64)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (table $t 4 funcref)
    (table $u 2 externref)
    (global $g (mut f64) (f64.const -nan:0x1))
    (elem $e func $pair_of $pair_of)
    (data $d "abc")
    (func $pair_of (type $pair) (local.get 0) (i64.const -1))
    (func (export "_start") (local $r externref) (local $f f32)
      (block $out (result i32 i64) (i32.const 1) (call $pair_of))
      (drop) (drop)
      (block $a (block $b (br_table $a $b $a (i32.const 2))))
      (if (result f64) (i32.const 0) (then (global.get $g)) (else (f64.const 1)))
      (global.set $g)
      (loop $l (br_if $l (i32.const 0)))
      (drop (select (result f32) (f32.const 1) (f32.const 2) (i32.const 1)))
      (drop (select (i32.const 1) (i32.const 2) (i32.const 0)))
      (drop (ref.is_null (ref.null extern)))
      (table.set $t (i32.const 3) (ref.func $pair_of))
      (drop (table.get $t (i32.const 3)))
      (drop (table.grow $u (ref.null extern) (i32.const 1)))
      (drop (table.size $u))
      (table.fill $u (i32.const 0) (local.get $r) (i32.const 1))
      (table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 1))
      (table.init $t $e (i32.const 0) (i32.const 0) (i32.const 2))
      (elem.drop $e)
      (drop (call_indirect $t (type $pair) (i32.const 7) (i32.const 0)))
      (drop)
      (memory.init $d (i32.const 8) (i32.const 0) (i32.const 3))
      (data.drop $d)
      (memory.copy (i32.const 16) (i32.const 8) (i32.const 3))
      (memory.fill (i32.const 24) (i32.const 7) (i32.const 4))
      (drop (memory.grow (i32.const 0)))
      (drop (memory.size))
      (drop (i32.trunc_sat_f32_s (f32.const nan)))
      (drop (i64.trunc_sat_f64_u (f64.const 1e300)))
      (drop (i64.extend32_s (i64.extend8_s (i64.const 0x80))))
      (drop (i32.extend16_s (i32.const 0x8000)))
      (i64.store32 offset=100 align=2 (i32.const 0) (i64.const -1))
      (f32.store offset=200 (i32.const 0) (local.get $f))
      (drop (i32.load8_u offset=4294967295 (i32.const 0)))
      (call $exit (i32.const 0))
      (unreachable)))""")
WAT_MODULES = [ECHO, RANDOM, ERRNO_PROBE, NAN_BITS, ARGS_AND_ENVIRONMENT, NON_CANONICAL_NANS,
               EVERY_FAMILY]  # fmt: skip


@pytest.mark.parametrize("module", [RENDER_WASM.read_bytes(), *WAT_MODULES])
def test_decoding_then_encoding_a_module_gives_its_bytes_back(module: bytes) -> None:
    assert encode_module(decode_module(module)) == module


def test_the_module_of_every_family_is_accepted_and_runs_its_course(engine: Engine) -> None:
    # It traps out of bounds at the last load; everything before it validated and ran.
    result = run(engine, EVERY_FAMILY)
    assert result.stop is StopReason.TRAP
    assert "out of bounds" in result.detail


def pad_everything(module: bytes) -> bytes:
    """The module with every LEB128 number in its code section padded to its widest."""
    decoded = decode_module(module)
    code = decoded.code
    assert code is not None
    for body in code.bodies:
        body.size_width = 5
        body.locals_width = 5
        padded = []
        for op, imms, op_width in body.code:
            new = []
            for imm in imms:
                if imm.kind == UNSIGNED:
                    new.append(imm._replace(width=5))
                elif imm.kind == SIGNED:
                    new.append(imm._replace(width=10 if op == 0x42 else 5))  # i64.const
                else:
                    new.append(imm)
            padded.append(Instruction(op, tuple(new), 5 if op > 0xFF else op_width))
        body.code = padded
    code.size_width = code.count_width = 5
    return encode_module(decoded)


def test_padded_numbers_round_trip_and_survive_the_guards(engine: Engine) -> None:
    padded = pad_everything(NON_CANONICAL_NANS)
    assert len(padded) > len(NON_CANONICAL_NANS)
    assert encode_module(decode_module(padded)) == padded
    guarded = decode_module(guard_nans(padded).wasm).code
    assert guarded is not None
    assert all(body.size_width == 5 for body in guarded.bodies)
    result = run(engine, padded)  # wasmtime reads the padded module as the same program
    assert struct.unpack(LAYOUT, result.output) == EXPECTED
    assert run(engine, pad_everything(EVERY_FAMILY)).detail == run(engine, EVERY_FAMILY).detail


def leb_width(value: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=len(write_unsigned(value)), max_value=5)


@st.composite
def unsigned(draw: st.DrawFn, max_value: int = 2**32 - 1) -> Imm:
    value = draw(st.integers(min_value=0, max_value=max_value))
    return Imm(UNSIGNED, value, draw(leb_width(value)))


@st.composite
def signed(draw: st.DrawFn, bits: int) -> Imm:
    value = draw(st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1))
    minimal = len(encode_instruction(Instruction(0x41, (Imm(SIGNED, value, 0),)))) - 1
    return Imm(SIGNED, value, draw(st.integers(min_value=minimal, max_value=(bits + 6) // 7)))


@st.composite
def instruction(draw: st.DrawFn) -> Instruction:
    """Any instruction of the supported set but the block structure, any immediates."""
    ops = sorted(op for op in SINGLE_LAYOUT if op not in (0x02, 0x03, 0x04, 0x0B))
    ops += [0xFC00 | sub for sub in PREFIXED_LAYOUT]
    op = draw(st.sampled_from(ops))
    layout = SINGLE_LAYOUT[op] if op <= 0xFF else PREFIXED_LAYOUT[op & 0xFF]
    zero = Imm(BYTE, 0, 1)
    imms: tuple[Imm, ...]
    if layout == "":
        imms = ()
    elif layout == "u32":
        imms = (draw(unsigned()),)
    elif layout == "memarg":
        align = draw(unsigned().filter(lambda imm: not int(imm.value) & 0x40))
        imms = (align, draw(unsigned()))
    elif layout in ("s32", "s64"):
        imms = (draw(signed(int(layout[1:]))),)
    elif layout in ("f32", "f64"):
        size = 4 if layout == "f32" else 8
        imms = (Imm(RAW, draw(st.binary(min_size=size, max_size=size)), size),)
    elif layout == "br_table":
        count = draw(unsigned(max_value=4))
        imms = (count, *(draw(unsigned()) for _ in range(int(count.value) + 1)))
    elif layout in ("call_indirect", "u32_u32"):
        imms = (draw(unsigned()), draw(unsigned()))
    elif layout == "select_t":
        one = Imm(UNSIGNED, 1, draw(leb_width(1)))
        imms = (one, Imm(BYTE, draw(st.sampled_from(sorted(VALUE_TYPES))), 1))
    elif layout == "mem0":
        imms = (zero,)
    elif layout == "mem0_mem0":
        imms = (zero, zero)
    elif layout == "u32_mem0":
        imms = (draw(unsigned()), zero)
    else:
        assert layout == "reftype"
        imms = (Imm(BYTE, draw(st.sampled_from([0x6F, 0x70])), 1),)
    return Instruction(op, imms, draw(leb_width(op & 0xFF)) if op > 0xFF else 1)


@st.composite
def block_start(draw: st.DrawFn) -> Instruction:
    op = draw(st.sampled_from([0x02, 0x03, 0x04]))
    short = st.sampled_from([0x40, *sorted(VALUE_TYPES)]).map(lambda b: Imm(BYTE, b, 1))
    index = st.integers(min_value=0, max_value=2**32 - 1).flatmap(
        lambda v: st.integers(min_value=len(write_unsigned(v << 1)), max_value=5).map(
            lambda w: Imm(SIGNED, v, w)))  # fmt: skip
    return Instruction(op, (draw(st.one_of(short, index)),))


@given(st.lists(st.one_of(instruction(), block_start()), max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_sequence_of_supported_instructions_round_trips(body: list[Instruction]) -> None:
    opened = sum(1 for i in body if i.op in (0x02, 0x03, 0x04))
    code = [*body, *[Instruction(0x0B)] * (opened + 1)]
    encoded = b"".join(encode_instruction(i) for i in code)
    assert decode_instructions(encoded, 0, len(encoded)) == code


# --- the decoder: malformed and unsupported code is refused, never a crash --------------


def function_module(body: bytes, locals_: bytes = b"\x00") -> bytes:
    """A module of one function () -> () with ``body`` (its code, including its end)."""
    entry = locals_ + body
    code = b"\x01" + write_unsigned(len(entry)) + entry
    return (HEADER + b"\x01\x04\x01\x60\x00\x00" + b"\x03\x02\x01\x00"
            + b"\x0a" + write_unsigned(len(code)) + code)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "locals_", "because"),
    [
        (b"\xfd\x0c" + bytes(16) + b"\x1a\x0b", b"\x00", "SIMD"),
        (b"\x00\xfe\x00\x0b", b"\x00", "threads"),
        (b"\x12\x00\x0b", b"\x00", "tail calls"),
        (b"\x06\x40\x0b\x0b", b"\x00", "exception handling"),
        (b"\xfc\x12\x0b", b"\x00", "0xfc 18"),
        (b"\xff\x0b", b"\x00", "0xff"),
        (b"\x0b", b"\x01\x01\x7b", "SIMD"),  # a v128 local
        (b"\x02\x7b\x0b\x0b", b"\x00", "SIMD"),  # a v128 block
        (b"\x02\x77\x0b\x0b", b"\x00", "unknown block type"),
        (b"\x01", b"\x00", "does not end"),
        (b"\x0b\x01", b"\x00", "after the end"),
        (b"\x41\x80\x80\x80\x80\x80\x00\x1a\x0b", b"\x00", "too long"),  # 6-byte i32.const
        (b"\x41\x80\x80\x80\x80\x70\x1a\x0b", b"\x00", "too large"),  # unused bits wrong
        (b"\x20\x80\x80\x80\x80\x10\x1a\x0b", b"\x00", "too large"),  # u32 over 32 bits
        (b"\x41\x80", b"\x00", "past its end"),
        (b"\x43\x00\x00", b"\x00", "past its end"),
        (b"\x1c\x02\x7f\x7f\x0b", b"\x00", "one type"),
        (b"\xd0\x6e\x0b", b"\x00", "reference type"),
        (b"\x3f\x01\x1a\x0b", b"\x00", "memory index"),
        (b"\x41\x00\x28\x42\x00\x00\x1a\x0b", b"\x00", "memory index"),  # multi-memory memarg
        (b"\x0b", b"\x01\x05\x05", "unknown type"),  # five locals of the type 0x05
    ],
)
def test_unsupported_or_malformed_code_is_refused_by_name(
    body: bytes, locals_: bytes, because: str
) -> None:
    with pytest.raises(ModuleRejectedError, match=because):
        guard_nans(function_module(body, locals_))


def test_the_refusals_reach_the_customer_through_check_module(engine: Engine) -> None:
    for body in (b"\x12\x00\x0b", b"\xfd\x0c" + bytes(16) + b"\x1a\x0b", b"\x01"):
        with pytest.raises(ModuleRejectedError):
            check_module(engine, function_module(body), max_bytes=1 << 20)


RENDER = RENDER_WASM.read_bytes()


@pytest.mark.parametrize(
    ("original", "examples"), [(RENDER, 60), (EVERY_FAMILY, 300), (NON_CANONICAL_NANS, 150)]
)
def test_a_mutated_module_is_refused_or_round_trips_never_a_crash(
    original: bytes, examples: int
) -> None:
    @given(st.data())
    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    def mutated(data: st.DataObject) -> None:
        refused_or_round_trips(data, original)

    mutated()


def refused_or_round_trips(data: st.DataObject, original: bytes) -> None:
    module = bytearray(original)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=8, max_value=len(module) - 1))
        module[at] = data.draw(st.integers(min_value=0, max_value=255))
    if data.draw(st.booleans()):
        del module[data.draw(st.integers(min_value=8, max_value=len(module))):]
    try:
        decoded = decode_module(bytes(module))
    except ModuleRejectedError:
        return
    assert encode_module(decoded) == bytes(module)
    try:
        report = guard_nans(bytes(module))
    except ModuleRejectedError:
        return
    assert report.guards >= 0


@given(st.binary(max_size=200), st.binary(max_size=6))
@settings(max_examples=500, deadline=None)
def test_random_function_bodies_are_refused_or_round_trip(body: bytes, locals_: bytes) -> None:
    module = function_module(body, locals_)
    try:
        decoded = decode_module(module)
    except ModuleRejectedError:
        return
    assert encode_module(decoded) == module
    with contextlib.suppress(ModuleRejectedError):
        guard_nans(module)


@given(st.binary(max_size=64))
@settings(max_examples=200, deadline=None)
def test_random_modules_through_check_module_are_refused_never_a_crash(
    engine: Engine, tail: bytes
) -> None:
    with contextlib.suppress(ModuleRejectedError):
        check_module(engine, HEADER + tail, max_bytes=1 << 20)
