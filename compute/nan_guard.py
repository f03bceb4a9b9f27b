"""Canonicalising NaNs where their bits can be observed: a load-time rewrite of the code.

WebAssembly float arithmetic is IEEE-exact except for the sign and payload of a NaN it
produces, which differ between processors (x86's default NaN is negative, ARM's
positive; which input NaN's payload propagates differs too). Those bits can only be
seen by a program at a few instructions:

* ``f32.store`` and ``f64.store`` (the bits go to memory, which the host reads),
* ``i32.reinterpret_f32`` and ``i64.reinterpret_f64`` (the bits become an integer),
* ``f32.copysign`` and ``f64.copysign`` (the *second* operand's sign bit becomes the
  sign of a result that need not be a NaN),
* and any SIMD (v128) instruction (lanes are bits): such modules are refused here.

Every other instruction is blind to a NaN's bits: comparisons, ``min``/``max``, the
other arithmetic (a NaN in gives a NaN out), conversions to integers (which trap on a
NaN, or give 0 for ``trunc_sat``), ``select``, locals, globals, blocks, calls and
returns, which move the bits unchanged. The host functions of the sandbox's WASI
surface take and return integers only, and the host reads nothing of a unit but its
memory (through ``fd_write``) and its exit status. So if the value reaching each of
those instructions is canonicalised, no NaN's bits can reach anything a device reports.

``guard_nans`` does that: before each such instruction it inserts, for a value ``x`` of
type ``T`` (f32 or f64) with a scratch local ``$t`` of that type added to the function::

    local.tee $t  T.const nan:canonical  local.get $t  local.get $t  T.eq  select

that is ``x == x ? x : nan:canonical`` (positive quiet NaN, zero payload: ``0x7fc00000``
and ``0x7ff8000000000000``). The engine then runs without Cranelift's own
canonicalisation, which follows *every* float operation with the same check.

The decoder is strict and deliberately small: WebAssembly 1.0 plus sign extension,
saturating conversions, bulk memory, multi-value and reference types, nothing else. An
opcode outside that set (SIMD, threads, tail calls, exceptions, GC...) refuses the
module with a ``ModuleRejectedError`` naming it, as does any malformed byte; LEB128
numbers keep their encoded width, so ``encode_module(decode_module(b)) == b`` for every
``b`` that decodes. Only the type, function and code sections are decoded; every other
section is carried as bytes.

The rewrite changes what a unit computes in a few corners (a stored NaN from
``f32.neg`` or from a constant comes out canonical; with Cranelift's canonicalisation
it kept its bits) and the fuel it burns (each guard is six more instructions), the same
way on every device: it is part of the runtime profile (``compute.profile``), and any
change to this file's output needs a new ``SANDBOX_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import ModuleRejectedError

WASM_HEADER = b"\0asm\x01\0\0\0"

SECTION_CUSTOM, SECTION_TYPE, SECTION_FUNCTION, SECTION_CODE = 0, 1, 3, 10
MAX_SECTION_ID = 12  # data count, the last section id of the supported proposals

# Value types (the supported proposals' only ones; v128 is refused)
I32, I64, F32, F64, V128, FUNCREF, EXTERNREF = 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F
VALUE_TYPES = frozenset({I32, I64, F32, F64, FUNCREF, EXTERNREF})
REFERENCE_TYPES = frozenset({FUNCREF, EXTERNREF})
EMPTY_BLOCK = 0x40
FUNC_TYPE = 0x60

# Opcodes the rewrite uses or looks for
OP_BLOCK, OP_LOOP, OP_IF, OP_END = 0x02, 0x03, 0x04, 0x0B
OP_SELECT = 0x1B
OP_LOCAL_GET, OP_LOCAL_TEE = 0x20, 0x22
OP_F32_STORE, OP_F64_STORE = 0x38, 0x39
OP_F32_CONST, OP_F64_CONST = 0x43, 0x44
OP_F32_EQ, OP_F64_EQ = 0x5B, 0x61
OP_F32_COPYSIGN, OP_F64_COPYSIGN = 0x98, 0xA6
OP_I32_REINTERPRET_F32, OP_I64_REINTERPRET_F64 = 0xBC, 0xBD
PREFIX_FC = 0xFC

#: the instructions that observe a NaN's bits, and the type of the value they observe
OBSERVERS: dict[int, int] = {
    OP_F32_STORE: F32,
    OP_F64_STORE: F64,
    OP_I32_REINTERPRET_F32: F32,
    OP_I64_REINTERPRET_F64: F64,
    OP_F32_COPYSIGN: F32,
    OP_F64_COPYSIGN: F64,
}
CANONICAL_NAN = {F32: bytes.fromhex("0000c07f"), F64: bytes.fromhex("000000000000f87f")}
_CONST = {F32: OP_F32_CONST, F64: OP_F64_CONST}
_EQ = {F32: OP_F32_EQ, F64: OP_F64_EQ}

#: the instructions each guard adds, for the documentation of fuel
GUARD_LENGTH = 6


# --- immediates and instructions ---------------------------------------------------------

#: kinds of immediate: an unsigned or signed LEB128 number, a single byte, raw bytes
UNSIGNED, SIGNED, BYTE, RAW = 0, 1, 2, 3


class Imm(NamedTuple):
    """One immediate as encoded: its kind, its value and its width in bytes (LEB128
    numbers may be padded; the width keeps the padding so the encoding round-trips)."""

    kind: int
    value: int | bytes
    width: int


class Instruction(NamedTuple):
    """An instruction: ``op`` is the opcode byte, or ``0xFC00 | sub`` for the 0xFC
    prefix (``op_width``: the width of the sub-opcode's LEB128)."""

    op: int
    imms: tuple[Imm, ...] = ()
    op_width: int = 1


# Immediate layouts
_NONE = ""
_BLOCK = "block"  # block type
_U32 = "u32"  # an index or a label
_BR_TABLE = "br_table"
_CALL_INDIRECT = "call_indirect"  # type index, table index
_SELECT_T = "select_t"
_MEMARG = "memarg"
_MEM0 = "mem0"  # a memory index, which must be the single byte 0 (one memory)
_MEM0_MEM0 = "mem0_mem0"
_U32_MEM0 = "u32_mem0"
_U32_U32 = "u32_u32"
_S32, _S64, _F32, _F64 = "s32", "s64", "f32", "f64"
_REF_TYPE = "reftype"


def _layouts() -> tuple[dict[int, str], dict[int, str]]:
    single: dict[int, str] = {0x00: _NONE, 0x01: _NONE, 0x02: _BLOCK, 0x03: _BLOCK,
                              0x04: _BLOCK, 0x05: _NONE, 0x0B: _NONE, 0x0C: _U32, 0x0D: _U32,
                              0x0E: _BR_TABLE, 0x0F: _NONE, 0x10: _U32,
                              0x11: _CALL_INDIRECT, 0x1A: _NONE, 0x1B: _NONE,
                              0x1C: _SELECT_T}  # fmt: skip
    for op in range(0x20, 0x27):  # local.get/set/tee, global.get/set, table.get/set
        single[op] = _U32
    for op in range(0x28, 0x3F):  # loads and stores
        single[op] = _MEMARG
    single[0x3F] = single[0x40] = _MEM0  # memory.size, memory.grow
    single[0x41], single[0x42], single[0x43], single[0x44] = _S32, _S64, _F32, _F64
    for op in range(0x45, 0xC5):  # numeric instructions, with sign extension (0xc0-0xc4)
        single[op] = _NONE
    single[0xD0], single[0xD1], single[0xD2] = _REF_TYPE, _NONE, _U32  # ref.null/is_null/func
    prefixed: dict[int, str] = dict.fromkeys(range(8), _NONE)  # saturating truncations
    prefixed.update({8: _U32_MEM0, 9: _U32, 10: _MEM0_MEM0, 11: _MEM0, 12: _U32_U32, 13: _U32,
                     14: _U32_U32, 15: _U32, 16: _U32, 17: _U32})  # fmt: skip
    return single, prefixed


SINGLE_LAYOUT, PREFIXED_LAYOUT = _layouts()

_REFUSED_OPCODES = {
    0x06: "exception handling", 0x07: "exception handling", 0x08: "exception handling",
    0x09: "exception handling", 0x0A: "exception handling", 0x18: "exception handling",
    0x19: "exception handling", 0x1F: "exception handling",
    0x12: "tail calls", 0x13: "tail calls", 0x14: "typed function references",
    0x15: "typed function references", 0xD3: "typed function references",
    0xD4: "typed function references", 0xD5: "typed function references",
    0xD6: "typed function references", 0xFB: "garbage collection",
    0xFD: "SIMD (v128)", 0xFE: "threads (atomics)",
}  # fmt: skip


def _refuse(what: str, offset: int) -> ModuleRejectedError:
    return ModuleRejectedError(f"{what} (at byte {offset:#x} of the module)")


def _refuse_opcode(op: int, offset: int, *, prefixed: bool = False) -> ModuleRejectedError:
    if prefixed:
        return _refuse(f"it uses the instruction 0xfc {op}, which the sandbox does not run", offset)
    if op == 0xFD:
        return _refuse("it uses SIMD (v128 instructions), which the sandbox does not run: "
                       "build without -msimd128", offset)  # fmt: skip
    proposal = _REFUSED_OPCODES.get(op)
    because = f" ({proposal}, not supported)" if proposal else ""
    return _refuse(f"it uses the instruction {op:#04x}{because}, which the sandbox does not run",
                   offset)  # fmt: skip


# --- LEB128 ------------------------------------------------------------------------------


def read_unsigned(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    """An unsigned LEB128 of at most ``bits`` bits at ``pos``, strictly (the spec's
    limits on length and unused bits): ``(value, position after it)``."""
    result = shift = 0
    start = pos
    limit = (bits + 6) // 7
    while True:
        if pos >= end:
            raise _refuse("malformed code: a number runs past its end", start)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if pos - start == limit:
            if byte & 0x80 or byte >> (bits - 7 * (limit - 1)):
                raise _refuse(f"malformed code: a number too long or too large for {bits} bits",
                              start)  # fmt: skip
            return result, pos
        if not byte & 0x80:
            return result, pos


def read_signed(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    """A signed LEB128 of at most ``bits`` bits, strictly (as ``read_unsigned``)."""
    result = shift = 0
    start = pos
    limit = (bits + 6) // 7
    while True:
        if pos >= end:
            raise _refuse("malformed code: a number runs past its end", start)
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if pos - start == limit:
            used = bits - 7 * (limit - 1)  # the bits of the last byte that carry the value
            rest = (byte & 0x7F) >> (used - 1)  # the value's sign bit and the unused bits
            if byte & 0x80 or rest not in (0, (1 << (8 - used)) - 1):
                raise _refuse(f"malformed code: a number too long or too large for {bits} bits",
                              start)  # fmt: skip
            break
        if not byte & 0x80:
            break
    if result >> (shift - 1) & 1:
        result -= 1 << shift
    return result, pos


def write_unsigned(value: int, width: int = 0) -> bytes:
    """``value`` as unsigned LEB128, padded to ``width`` bytes when it fits in them."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or len(out) + 1 < width:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_signed(value: int, width: int = 0) -> bytes:
    """``value`` as signed LEB128, padded to ``width`` bytes (sign-extended)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        if done and len(out) + 1 >= width:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


# --- the code of one function ------------------------------------------------------------


def _u32(data: bytes, pos: int, end: int) -> tuple[Imm, int]:
    value, after = read_unsigned(data, pos, end, 32)
    return Imm(UNSIGNED, value, after - pos), after


def _mem0(data: bytes, pos: int, end: int) -> tuple[Imm, int]:
    if pos >= end or data[pos] != 0:
        raise _refuse("it uses a memory index other than 0 (one memory only)", pos)
    return Imm(BYTE, 0, 1), pos + 1


def _immediates(layout: str, data: bytes, pos: int, end: int) -> tuple[tuple[Imm, ...], int]:
    """Decode the immediates of one layout at ``pos``."""
    if layout == _U32:
        imm, pos = _u32(data, pos, end)
        return (imm,), pos
    if layout == _MEMARG:
        align, pos = _u32(data, pos, end)
        if int(align.value) & 0x40:  # the multi-memory encoding names a memory
            raise _refuse("it uses a memory index other than 0 (one memory only)", pos)
        offset, pos = _u32(data, pos, end)
        return (align, offset), pos
    if layout == _BLOCK:
        if pos >= end:
            raise _refuse("malformed code: a block type runs past its end", pos)
        byte = data[pos]
        if byte == EMPTY_BLOCK or byte in VALUE_TYPES:
            return (Imm(BYTE, byte, 1),), pos + 1
        if byte == V128:
            raise _refuse("it uses SIMD (a v128 block), which the sandbox does not run", pos)
        index, after = read_signed(data, pos, end, 33)
        if index < 0:
            raise _refuse(f"malformed code: an unknown block type {byte:#04x}", pos)
        return (Imm(SIGNED, index, after - pos),), after
    if layout == _S32:
        value, after = read_signed(data, pos, end, 32)
        return (Imm(SIGNED, value, after - pos),), after
    if layout == _S64:
        value, after = read_signed(data, pos, end, 64)
        return (Imm(SIGNED, value, after - pos),), after
    if layout in (_F32, _F64):
        size = 4 if layout == _F32 else 8
        if pos + size > end:
            raise _refuse("malformed code: a constant runs past its end", pos)
        return (Imm(RAW, data[pos : pos + size], size),), pos + size
    if layout == _BR_TABLE:
        count, pos = _u32(data, pos, end)
        items = [count]
        for _ in range(int(count.value) + 1):  # the labels, then the default
            if pos >= end:
                raise _refuse("malformed code: br_table runs past its end", pos)
            label, pos = _u32(data, pos, end)
            items.append(label)
        return tuple(items), pos
    if layout == _CALL_INDIRECT:
        type_index, pos = _u32(data, pos, end)
        table, pos = _u32(data, pos, end)
        return (type_index, table), pos
    if layout == _SELECT_T:
        count, pos = _u32(data, pos, end)
        if count.value != 1:
            raise _refuse("malformed code: a typed select names one type", pos)
        if pos >= end or data[pos] not in VALUE_TYPES:
            if pos < end and data[pos] == V128:
                raise _refuse("it uses SIMD (a v128 select), which the sandbox does not run", pos)
            raise _refuse("malformed code: a typed select names an unknown type", pos)
        return (count, Imm(BYTE, data[pos], 1)), pos + 1
    if layout == _MEM0:
        imm, pos = _mem0(data, pos, end)
        return (imm,), pos
    if layout == _MEM0_MEM0:
        first, pos = _mem0(data, pos, end)
        second, pos = _mem0(data, pos, end)
        return (first, second), pos
    if layout == _U32_MEM0:
        segment, pos = _u32(data, pos, end)
        memory, pos = _mem0(data, pos, end)
        return (segment, memory), pos
    if layout == _U32_U32:
        first, pos = _u32(data, pos, end)
        second, pos = _u32(data, pos, end)
        return (first, second), pos
    if layout == _REF_TYPE:
        if pos >= end or data[pos] not in REFERENCE_TYPES:
            raise _refuse("malformed code: ref.null names an unknown reference type", pos)
        return (Imm(BYTE, data[pos], 1),), pos + 1
    raise AssertionError(layout)  # pragma: no cover (the tables hold only the layouts above)


def decode_instructions(data: bytes, pos: int, end: int) -> list[Instruction]:
    """The instructions of one function's expression, ``data[pos:end]``: it must end
    with the ``end`` that closes the function, exactly at ``end``."""
    instructions: list[Instruction] = []
    append = instructions.append
    depth = 1
    single = SINGLE_LAYOUT
    while pos < end:
        start = pos
        op = data[pos]
        pos += 1
        layout = single.get(op)
        width = 1
        if layout is None:
            if op != PREFIX_FC:
                raise _refuse_opcode(op, start)
            sub, after = read_unsigned(data, pos, end, 32)
            width = after - pos
            pos = after
            layout = PREFIXED_LAYOUT.get(sub)
            if layout is None:
                raise _refuse_opcode(sub, start, prefixed=True)
            op = PREFIX_FC << 8 | sub
        if layout == _NONE:
            append(Instruction(op, (), width))
        else:
            imms, pos = _immediates(layout, data, pos, end)
            append(Instruction(op, imms, width))
        if op in (OP_BLOCK, OP_LOOP, OP_IF):
            depth += 1
        elif op == OP_END:
            depth -= 1
            if depth == 0:
                if pos != end:
                    raise _refuse("malformed code: bytes after the end of a function", pos)
                return instructions
    raise _refuse("malformed code: a function's code does not end with end", pos)


def encode_instruction(instruction: Instruction) -> bytes:
    """The bytes of one instruction, exactly as decoded (padding kept)."""
    op, imms, width = instruction
    prefix = [op] if op <= 0xFF else [PREFIX_FC, *write_unsigned(op & 0xFF, width)]
    out = bytearray(prefix)
    for kind, value, size in imms:
        if isinstance(value, bytes):  # RAW: a constant's bytes
            out += value
        elif kind == UNSIGNED:
            out += write_unsigned(value, size)
        elif kind == SIGNED:
            out += write_signed(value, size)
        else:  # BYTE
            out.append(value)
    return bytes(out)


@dataclass
class LocalGroup:
    """``count`` locals of ``type`` (a value type byte), as declared."""

    count: Imm
    type: int


@dataclass
class FunctionBody:
    """One entry of the code section."""

    locals: list[LocalGroup]
    code: list[Instruction]
    size_width: int = 1
    locals_width: int = 1

    @property
    def local_count(self) -> int:
        return sum(int(group.count.value) for group in self.locals)


def decode_body(data: bytes, pos: int, end: int) -> FunctionBody:
    """One function body (its locals and code) in ``data[pos:end]``."""
    groups, pos = _u32(data, pos, end)
    locals_: list[LocalGroup] = []
    total = 0
    for _ in range(int(groups.value)):
        count, pos = _u32(data, pos, end)
        if pos >= end:
            raise _refuse("malformed code: local declarations run past their end", pos)
        kind = data[pos]
        if kind == V128:
            raise _refuse("it uses SIMD (a v128 local), which the sandbox does not run", pos)
        if kind not in VALUE_TYPES:
            raise _refuse(f"malformed code: a local of unknown type {kind:#04x}", pos)
        pos += 1
        total += int(count.value)
        if total >= 1 << 32:
            raise _refuse("malformed code: too many locals", pos)
        locals_.append(LocalGroup(count, kind))
    code = decode_instructions(data, pos, end)
    return FunctionBody(locals_, code, locals_width=groups.width)


def encode_body(body: FunctionBody) -> bytes:
    """A function body's bytes, its size first."""
    out = bytearray(write_unsigned(len(body.locals), body.locals_width))
    for group in body.locals:
        out += write_unsigned(int(group.count.value), group.count.width)
        out.append(group.type)
    for instruction in body.code:
        out += encode_instruction(instruction)
    return write_unsigned(len(out), body.size_width) + bytes(out)


# --- the module ----------------------------------------------------------------------------


@dataclass
class Section:
    """A section kept as its bytes (id, the width of its size, its contents)."""

    id: int
    contents: bytes
    size_width: int = 1


@dataclass
class CodeSection:
    """The code section, decoded."""

    bodies: list[FunctionBody]
    size_width: int = 1
    count_width: int = 1
    id: int = field(default=SECTION_CODE, init=False)


@dataclass
class WasmModule:
    """A module as its sections, the code section decoded."""

    sections: list[Section | CodeSection]

    def section(self, section_id: int) -> Section | None:
        for section in self.sections:
            if isinstance(section, Section) and section.id == section_id:
                return section
        return None

    @property
    def code(self) -> CodeSection | None:
        for section in self.sections:
            if isinstance(section, CodeSection):
                return section
        return None


def decode_code_section(data: bytes, pos: int, end: int, size_width: int) -> CodeSection:
    count, pos = _u32(data, pos, end)
    bodies = []
    for _ in range(int(count.value)):
        size, after = _u32(data, pos, end)
        if after + int(size.value) > end:
            raise _refuse("malformed code: a function body runs past the code section", pos)
        body = decode_body(data, after, after + int(size.value))
        body.size_width = size.width
        bodies.append(body)
        pos = after + int(size.value)
    if pos != end:
        raise _refuse("malformed code: bytes after the last function body", pos)
    return CodeSection(bodies, size_width=size_width, count_width=count.width)


def encode_code_section(section: CodeSection) -> bytes:
    out = bytearray(write_unsigned(len(section.bodies), section.count_width))
    for body in section.bodies:
        out += encode_body(body)
    return bytes(out)


def decode_module(wasm: bytes) -> WasmModule:
    """Split a module into sections and decode its code section, strictly; raise
    ``ModuleRejectedError`` naming the first problem."""
    data = bytes(wasm)
    if data[:8] != WASM_HEADER:
        raise ModuleRejectedError("not a WebAssembly 1.0 core module")
    pos, end = 8, len(data)
    sections: list[Section | CodeSection] = []
    seen_code = False
    while pos < end:
        section_id = data[pos]
        if section_id > MAX_SECTION_ID:
            raise _refuse(f"malformed module: unknown section id {section_id}", pos)
        size, after = read_unsigned(data, pos + 1, end, 32)
        width = after - pos - 1
        stop = after + size
        if stop > end:
            raise _refuse("malformed module: a section runs past the end of the module", pos)
        if section_id == SECTION_CODE:
            if seen_code:
                raise _refuse("malformed module: two code sections", pos)
            seen_code = True
            sections.append(decode_code_section(data, after, stop, width))
        else:
            sections.append(Section(section_id, data[after:stop], width))
        pos = stop
    return WasmModule(sections)


def encode_module(module: WasmModule) -> bytes:
    """The module's bytes; ``encode_module(decode_module(b)) == b``."""
    out = bytearray(WASM_HEADER)
    for section in module.sections:
        if isinstance(section, CodeSection):
            contents = encode_code_section(section)
        else:
            contents = section.contents
        out.append(section.id)
        out += write_unsigned(len(contents), section.size_width)
        out += contents
    return bytes(out)


def _param_counts(module: WasmModule) -> list[int]:
    """The number of parameters of each function the module defines (in code order)."""
    types: list[int] = []
    section = module.section(SECTION_TYPE)
    if section is not None:
        data, pos, end = section.contents, 0, len(section.contents)
        count, pos = read_unsigned(data, pos, end, 32)
        for _ in range(count):
            if pos >= end or data[pos] != FUNC_TYPE:
                raise _refuse("malformed module: a type that is not a function type", pos)
            params, pos = read_unsigned(data, pos + 1, end, 32)
            for _ in range(params):
                if pos >= end or data[pos] not in VALUE_TYPES:
                    raise _refuse("malformed module: a parameter of unknown type", pos)
                pos += 1
            results, pos = read_unsigned(data, pos, end, 32)
            if pos + results > end:
                raise _refuse("malformed module: a function type runs past its end", pos)
            pos += results
            types.append(params)
    functions: list[int] = []
    section = module.section(SECTION_FUNCTION)
    if section is not None:
        data, pos, end = section.contents, 0, len(section.contents)
        count, pos = read_unsigned(data, pos, end, 32)
        for _ in range(count):
            index, pos = read_unsigned(data, pos, end, 32)
            if index >= len(types):
                raise _refuse("malformed module: a function of an unknown type", pos)
            functions.append(types[index])
    return functions


# --- the rewrite ---------------------------------------------------------------------------


def _guard(value_type: int, scratch: int) -> list[Instruction]:
    """``x == x ? x : nan:canonical`` on the value ``x`` on top of the stack."""
    local = Imm(UNSIGNED, scratch, len(write_unsigned(scratch)))
    nan = CANONICAL_NAN[value_type]
    return [
        Instruction(OP_LOCAL_TEE, (local,)),
        Instruction(_CONST[value_type], (Imm(RAW, nan, len(nan)),)),
        Instruction(OP_LOCAL_GET, (local,)),
        Instruction(OP_LOCAL_GET, (local,)),
        Instruction(_EQ[value_type]),
        Instruction(OP_SELECT),
    ]


def guard_body(body: FunctionBody, params: int) -> int:
    """Guard each observing instruction of ``body`` in place; the number of guards."""
    needed = {OBSERVERS[i.op] for i in body.code if i.op in OBSERVERS}
    if not needed:
        return 0
    scratch: dict[int, int] = {}
    next_local = params + body.local_count
    for value_type in (F32, F64):
        if value_type in needed:
            scratch[value_type] = next_local
            body.locals.append(LocalGroup(Imm(UNSIGNED, 1, 1), value_type))
            next_local += 1
    if next_local > 1 << 32:
        raise ModuleRejectedError("a function has too many locals to add a scratch local")
    code: list[Instruction] = []
    guards = 0
    for instruction in body.code:
        observed = OBSERVERS.get(instruction.op)
        if observed is not None:
            code.extend(_guard(observed, scratch[observed]))
            guards += 1
        code.append(instruction)
    body.code = code
    return guards


@dataclass(frozen=True)
class GuardReport:
    """What ``guard_nans`` did: the rewritten module and the guards it inserted."""

    wasm: bytes
    guards: int
    functions: int


def guard_nans(wasm: bytes) -> GuardReport:
    """The module with a NaN guard before each instruction that observes a NaN's bits;
    ``ModuleRejectedError`` for a module the decoder refuses (SIMD, an unknown opcode,
    malformed code)."""
    module = decode_module(wasm)
    params = _param_counts(module)
    code = module.code
    bodies = code.bodies if code is not None else []
    if len(bodies) != len(params):
        raise ModuleRejectedError(
            "malformed module: the function and code sections disagree on the number of "
            "functions"
        )
    guards = functions = 0
    for body, count in zip(bodies, params, strict=True):
        added = guard_body(body, count)
        guards += added
        functions += bool(added)
    return GuardReport(encode_module(module) if guards else bytes(wasm), guards, functions)
