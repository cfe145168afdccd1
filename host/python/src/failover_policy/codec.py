"""Calling the component's exports and answering its imports without wasmtime-py's per-call
type walk.

wasmtime-py's `Func.__call__` asks the C API for the function's type on every call, and every
record, variant and option conversion asks again for field and case names; a `list<u8>` is
converted one Python call per byte. Here each function's type is read once and compiled into
converters (closures with the field names, case names, enum names and the tagged-ness of each
variant decided up front) that write and read the C API's `wasmtime_component_val_t` trees as
raw memory:

- Arguments are written into a reusable scratch block (`Arena`) owned by Python. The C API only
  borrows a call's arguments (`wasmtime_component_func_call` takes `const *` and converts them
  to Rust values before the guest runs), so nothing is allocated by Rust and nothing is freed
  after the call. A `list<u8>` is written with two extended-slice assignments.
- A result is read in place, then freed with one `wasmtime_component_val_delete` of the whole
  tree. An `own` resource in a result is taken out first (its slot is overwritten with a `bool`
  so the delete leaves it alone), as wasmtime-py does.
- A host import's arguments belong to wasmtime (it drops them after the callback): they are
  only read. Its result must be Rust-owned (wasmtime drops it): it is built in a scratch block
  and deep-copied into the result slot with `wasmtime_component_val_clone`.

Values have exactly the shapes wasmtime-py gives and takes (records as `Record` objects with
kebab-case attributes, enums as `str`, options as the value or None, a `result`/`variant` as a
`Variant` only when its cases' Python classes clash, `list<u8>` as `bytes`, resources as
`ResourceAny`), so `types` decodes either path and the tests compare the two.

A type this module does not handle (futures, streams, error contexts, maps, `own` arguments)
makes `compile_func` raise `Unsupported`; the caller then uses wasmtime-py's own call for that
function. `SUPPORTED` is False when the C layout is not the one this module was written for.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from collections.abc import Callable
from ctypes import CFUNCTYPE, POINTER, c_size_t, c_void_p
from typing import Any

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import Record, ResourceAny, Variant, _enter
from wasmtime.component import _types as wt
from wasmtime.component._linker import FUNCTIONS, func_finalize

Lower = Callable[[Any, "Arena", memoryview, int], None]
Lift = Callable[[int], Any]


class Unsupported(Exception):
    """A type the compiled path does not convert; use wasmtime-py's generic call instead."""


# ---- the C layout (wasmtime 50 C API), checked once ----

VAL = ctypes.sizeof(ffi.wasmtime_component_val_t)
ENTRY = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry_t)
# `FAILOVER_PY_CONVERTERS=off` takes wasmtime-py's own call path everywhere: CI runs the suite
# that way too, so a wasmtime-py change degrades to the slow path instead of breaking.
SUPPORTED = (
    os.environ.get("FAILOVER_PY_CONVERTERS", "on") != "off"
    and VAL == 32 and ENTRY == 48
    and ffi.wasmtime_component_val_t.of.offset == 8
    and ffi.wasmtime_component_valrecord_entry_t.val.offset == 16
    and ffi.wasmtime_component_vallist_t.size.offset == 0
    and ffi.wasmtime_component_vallist_t.data.offset == 8
    and ffi.wasm_byte_vec_t.size.offset == 0 and ffi.wasm_byte_vec_t.data.offset == 8
    and ffi.wasmtime_component_valresult_t.val.offset == 8
    and ffi.wasmtime_component_valvariant_t.val.offset == 16
)

K_BOOL, K_S8, K_U8, K_S16, K_U16, K_S32, K_U32, K_S64, K_U64, K_F32, K_F64, K_CHAR = (
    ffi.WASMTIME_COMPONENT_BOOL.value, ffi.WASMTIME_COMPONENT_S8.value, ffi.WASMTIME_COMPONENT_U8.value,
    ffi.WASMTIME_COMPONENT_S16.value, ffi.WASMTIME_COMPONENT_U16.value, ffi.WASMTIME_COMPONENT_S32.value,
    ffi.WASMTIME_COMPONENT_U32.value, ffi.WASMTIME_COMPONENT_S64.value, ffi.WASMTIME_COMPONENT_U64.value,
    ffi.WASMTIME_COMPONENT_F32.value, ffi.WASMTIME_COMPONENT_F64.value, ffi.WASMTIME_COMPONENT_CHAR.value)
K_STRING, K_LIST, K_RECORD, K_TUPLE, K_VARIANT, K_ENUM, K_OPTION, K_RESULT, K_FLAGS, K_RESOURCE = (
    ffi.WASMTIME_COMPONENT_STRING.value, ffi.WASMTIME_COMPONENT_LIST.value,
    ffi.WASMTIME_COMPONENT_RECORD.value, ffi.WASMTIME_COMPONENT_TUPLE.value,
    ffi.WASMTIME_COMPONENT_VARIANT.value, ffi.WASMTIME_COMPONENT_ENUM.value,
    ffi.WASMTIME_COMPONENT_OPTION.value, ffi.WASMTIME_COMPONENT_RESULT.value,
    ffi.WASMTIME_COMPONENT_FLAGS.value, ffi.WASMTIME_COMPONENT_RESOURCE.value)

# All of the process's memory as one read-only view: results are read in place at the addresses
# the C API hands back (`_MEM[a:a+n]`, `unpack_from(_MEM, a)`), with no per-read ctypes object.
_MEM = memoryview((ctypes.c_ubyte * sys.maxsize).from_address(0)).cast("B").toreadonly()

_HEAD = struct.Struct("<B7x")             # a val's kind (its payload starts at +8)
_HEAD_Q = struct.Struct("<B7xQ")          # kind + one word (option pointer, resource pointer)
_HEAD_QQ = struct.Struct("<B7xQQ")        # kind + {size, data} (string, enum, list, record, ...)
_HEAD_BQ = struct.Struct("<B7x?7xQ")      # kind + result {is_ok, val}
_HEAD_QQQ = struct.Struct("<B7xQQQ")      # kind + variant {name size, name data, val}
_QQ = struct.Struct("<QQ")
_Q = struct.Struct("<Q")
_NUM = {K_BOOL: "?", K_S8: "b", K_U8: "B", K_S16: "h", K_U16: "H", K_S32: "i", K_U32: "I",
        K_S64: "q", K_U64: "Q", K_F32: "f", K_F64: "d", K_CHAR: "I"}

# The raw C functions, declared with plain addresses (ints) so a call converts no ctypes objects.
_func_call = CFUNCTYPE(c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)(
    ("wasmtime_component_func_call", ffi.dll))
_val_delete = CFUNCTYPE(None, c_void_p)(("wasmtime_component_val_delete", ffi.dll))
_val_clone = CFUNCTYPE(None, c_void_p, c_void_p)(("wasmtime_component_val_clone", ffi.dll))


def _addr(pointer: Any) -> int:
    return ctypes.cast(pointer, c_void_p).value or 0


def _str(addr: int) -> str:
    """The `wasm_name_t` at `addr` as text."""
    n, p = _QQ.unpack_from(_MEM, addr)
    return str(_MEM[p:p + n], "utf-8") if n else ""


# ---- scratch memory for arguments ----

# Lists longer than this are built in their own bytearray (extended-slice assignment is fastest
# there), not in the arena's block.
_BULK = 4096


class Arena:
    """Bump-allocated scratch memory for one call's arguments, reset before each call.

    Everything goes into one reusable block while it fits; a call that needs more gets extra
    blocks that live until the next reset, and the main block grows (up to 1 MiB) for next time.
    Not thread-safe: like the Store it serves, one call at a time.
    """

    __slots__ = ("mv", "base", "size", "top", "extra", "wanted")

    def __init__(self, size: int = 16 << 10) -> None:
        self.extra: list[Any] = []
        self._block(size)
        self.wanted = 0

    def _block(self, size: int) -> None:
        block = (ctypes.c_ubyte * size)()
        self.extra = [block]  # keeps the block alive; replaced in reset()
        self.mv = memoryview(block).cast("B")
        self.base = ctypes.addressof(block)
        self.size = size
        self.top = 0

    def reset(self) -> None:
        """Before a call: start over at the top of the main block, grown first (up to 1 MiB)
        when the previous call did not fit in it."""
        self.release()
        if self.wanted > self.size and self.size < 1 << 20:
            self._block(min(1 << 20, max(self.wanted, 2 * self.size)))
        self.top = 0
        self.wanted = 0

    def release(self) -> None:
        """After a call (wasmtime has copied the arguments): free the blocks beyond the main one."""
        if len(self.extra) > 1:
            del self.extra[1:]

    def alloc(self, n: int) -> tuple[memoryview, int, int]:
        """(view, offset in the view, address) of `n` fresh bytes, 8-aligned."""
        off = self.top
        end = off + ((n + 7) & ~7)
        self.wanted += end - off
        if end <= self.size:
            self.top = end
            return self.mv, off, self.base + off
        block = (ctypes.c_ubyte * max(n, 8))()
        self.extra.append(block)
        return memoryview(block).cast("B"), 0, ctypes.addressof(block)

    def bytes_at(self, data: bytes) -> int:
        """The address of a copy of `data` (0 when empty: the C API accepts a null empty vec)."""
        n = len(data)
        if not n:
            return 0
        mv, off, addr = self.alloc(n)
        mv[off:off + n] = data
        return addr

    def bulk(self, n: int) -> tuple[bytearray, int]:
        """A zeroed bytearray of `n` bytes kept alive until reset, and its address."""
        block = bytearray(n)
        anchor = (ctypes.c_ubyte * n).from_buffer(block)
        self.extra.append((block, anchor))
        return block, ctypes.addressof(anchor)


class _Static:
    """Bytes that live as long as the compiled converters: field, case and enum names."""

    def __init__(self) -> None:
        self._keep: list[Any] = []

    def name(self, text: str) -> tuple[int, int]:
        data = text.encode("utf-8")
        buf = ctypes.create_string_buffer(data, len(data) or 1)
        self._keep.append(buf)
        return len(data), ctypes.addressof(buf)


# ---- compiling a type into converters ----

def _classes(ty: wt.ValType | None) -> tuple[type, ...]:
    s: set[type] = set()
    if ty is None:
        s.add(object)
    else:
        ty.add_classes(s)
    return tuple(s)


class Compiler:
    """Turns wasmtime-py `ValType`s into (lower, lift) converters. Names are kept in `static`,
    which must outlive the converters (a compiled function holds its Compiler)."""

    def __init__(self) -> None:
        self.static = _Static()

    def lower(self, ty: wt.ValType) -> Lower:
        return self._compile(ty)[0]

    def lift(self, ty: wt.ValType) -> Lift:
        return self._compile(ty)[1]

    def _compile(self, ty: wt.ValType) -> tuple[Lower, Lift]:
        if isinstance(ty, wt.String):
            return _string(K_STRING)
        if isinstance(ty, (wt.Bool, wt.S8, wt.U8, wt.S16, wt.U16, wt.S32, wt.U32, wt.S64, wt.U64,
                           wt.F32, wt.F64, wt.Char)):
            return _number(ty)
        if isinstance(ty, wt.EnumType):
            return self._enum(ty)
        if isinstance(ty, wt.RecordType):
            return self._record(ty)
        if isinstance(ty, wt.ListType):
            return self._list(ty)
        if isinstance(ty, wt.TupleType):
            return self._tuple(ty)
        if isinstance(ty, wt.OptionType):
            return self._variant_like(ty, K_OPTION)
        if isinstance(ty, wt.ResultType):
            return self._variant_like(ty, K_RESULT)
        if isinstance(ty, wt.VariantType):
            return self._variant_like(ty, K_VARIANT)
        if isinstance(ty, wt.FlagsType):
            return self._flags(ty)
        if isinstance(ty, wt.BorrowType):
            return _borrow, _resource_lift
        if isinstance(ty, wt.OwnType):
            return _own_lower, _resource_lift
        raise Unsupported(f"no compiled conversion for {type(ty).__name__}")

    def _enum(self, ty: wt.EnumType) -> tuple[Lower, Lift]:
        names = ty.names
        table = {n: self.static.name(n) for n in names}
        by_bytes = {n.encode("utf-8"): n for n in names}
        pack = _HEAD_QQ.pack_into

        def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            try:
                n, p = table[v]
            except (KeyError, TypeError):
                raise ValueError(f"{v!r} is not one of the enum's cases {names}") from None
            pack(mv, off, K_ENUM, n, p)

        unpack = _QQ.unpack_from

        def lift(addr: int) -> str:
            n, p = unpack(_MEM, addr + 8)
            raw = bytes(_MEM[p:p + n])
            return by_bytes.get(raw) or raw.decode("utf-8")
        return lower, lift

    def _record(self, ty: wt.RecordType) -> tuple[Lower, Lift]:
        """A record's converters as generated Python: strings and numbers are read and written
        inline (a record is most of what crosses the boundary), other fields by their converter."""
        fields = ty.fields
        count = len(fields)
        template = bytearray(ENTRY * count)
        ns: dict[str, Any] = {"_M": _MEM, "_new": object.__new__, "_Record": Record, "_enc": str.encode,
                              "_QQ": _QQ.unpack_from, "_pQQ": _QQ.pack_into, "_head": _HEAD_QQ.pack_into,
                              "_K": K_RECORD, "_T": None, "_str": _str, "_bad": _bad_record}
        low = ["def lower(v, a, mv, off):"]
        lift = ["def lift(addr):", "    n, d = _QQ(_M, addr + 8)", f"    if n != {count}:",
                f"        _bad(n, {count})", "    r = _new(_Record)", "    r.__dict__ = {"]
        if count:
            low += [f"    emv, eoff, eaddr = a.alloc({ENTRY * count})", f"    emv[eoff:eoff + {ENTRY * count}] = _T"]
        else:
            low += ["    eaddr = 0"]
        for i, (name, fty) in enumerate(fields):
            entry = i * ENTRY
            _QQ.pack_into(template, entry, *self.static.name(name))
            val = entry + 16  # the field's val_t within the entries
            get = f"v.{name}" if name.isidentifier() else f"getattr(v, {name!r})"
            if isinstance(fty, wt.String):
                template[val] = K_STRING
                low += [f"    b = _enc({get})", f"    _pQQ(emv, eoff + {val + 8}, len(b), a.bytes_at(b))"]
                lift.append(f"        {name!r}: _str(d + {val + 8}),")
            elif type(fty) in _INLINE:
                kind, code = _INLINE[type(fty)]
                template[val] = kind
                ns[f"_p{code}"] = struct.Struct("<" + code).pack_into
                ns[f"_u{code}"] = struct.Struct("<" + code).unpack_from
                low += [f"    _p{code}(emv, eoff + {val + 8}, {get})"]
                lift.append(f"        {name!r}: _u{code}(_M, d + {val + 8})[0],")
            else:
                lo, li = self._compile(fty)
                ns[f"_lo{i}"], ns[f"_li{i}"] = lo, li
                low += [f"    _lo{i}({get}, a, emv, eoff + {val})"]
                lift.append(f"        {name!r}: _li{i}(d + {val}),")
        low.append(f"    _head(mv, off, _K, {count}, eaddr)")
        lift += ["    }", "    return r"]
        ns["_T"] = bytes(template)
        exec(compile("\n".join(low) + "\n" + "\n".join(lift) + "\n", f"<record {[n for n, _ in fields]}>", "exec"), ns)
        return ns["lower"], ns["lift"]

    def _list(self, ty: wt.ListType) -> tuple[Lower, Lift]:
        element = ty.element
        pack = _HEAD_QQ.pack_into
        unpack = _QQ.unpack_from
        if isinstance(element, wt.U8):
            u8 = bytes([K_U8])

            def lower_bytes(v: Any, a: Arena, mv: memoryview, off: int) -> None:
                if not isinstance(v, (bytes, bytearray, memoryview)):
                    raise TypeError(f"expected bytes for list<u8>, got {type(v).__name__}")
                n = len(v)
                if not n:
                    pack(mv, off, K_LIST, 0, 0)
                    return
                if n <= _BULK:
                    emv, eoff, eaddr = a.alloc(VAL * n)
                    emv[eoff:eoff + VAL * n:VAL] = u8 * n
                    emv[eoff + 8:eoff + VAL * n:VAL] = v
                else:
                    block, eaddr = a.bulk(VAL * n)
                    block[0::VAL] = u8 * n
                    block[8::VAL] = v
                pack(mv, off, K_LIST, n, eaddr)

            def lift_bytes(addr: int) -> bytes:
                n, d = unpack(_MEM, addr + 8)
                return bytes(_MEM[d + 8:d + 8 + VAL * n:VAL]) if n else b""
            return lower_bytes, lift_bytes

        lo_e, li_e = self._compile(element)

        def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            if not isinstance(v, list):
                raise TypeError(f"expected a list, got {type(v).__name__}")
            n = len(v)
            if not n:
                pack(mv, off, K_LIST, 0, 0)
                return
            emv, eoff, eaddr = a.alloc(VAL * n)
            for i, x in enumerate(v):
                lo_e(x, a, emv, eoff + VAL * i)
            pack(mv, off, K_LIST, n, eaddr)

        def lift(addr: int) -> list[Any]:
            n, d = unpack(_MEM, addr + 8)
            return [li_e(d + VAL * i) for i in range(n)]
        return lower, lift

    def _tuple(self, ty: wt.TupleType) -> tuple[Lower, Lift]:
        parts = [self._compile(e) for e in ty.elements]
        count = len(parts)
        pack = _HEAD_QQ.pack_into
        unpack = _QQ.unpack_from

        def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            if not isinstance(v, tuple) or len(v) != count:
                raise TypeError(f"expected a tuple of {count}")
            emv, eoff, eaddr = a.alloc(VAL * count) if count else (mv, 0, 0)
            for i, ((lo, _), x) in enumerate(zip(parts, v, strict=True)):
                lo(x, a, emv, eoff + VAL * i)
            pack(mv, off, K_TUPLE, count, eaddr)

        def lift(addr: int) -> tuple[Any, ...]:
            n, d = unpack(_MEM, addr + 8)
            return tuple(li(d + VAL * i) for i, (_, li) in zip(range(n), parts, strict=False))
        return lower, lift

    def _flags(self, ty: wt.FlagsType) -> tuple[Lower, Lift]:
        names = ty.names
        table = {n: self.static.name(n) for n in names}
        pack = _HEAD_QQ.pack_into
        unpack = _QQ.unpack_from

        def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            if not isinstance(v, set):
                raise TypeError("expected a set of str for flags")
            items = list(v)
            emv, eoff, eaddr = a.alloc(16 * len(items)) if items else (mv, 0, 0)
            for i, s in enumerate(items):
                if s not in table:
                    raise ValueError(f"{s!r} is not one of the flags {names}")
                _QQ.pack_into(emv, eoff + 16 * i, *table[s])
            pack(mv, off, K_FLAGS, len(items), eaddr)

        def lift(addr: int) -> set[str]:
            n, d = unpack(_MEM, addr + 8)
            return {_str(d + 16 * i) for i in range(n)}
        return lower, lift

    def _variant_like(self, ty: Any, kind: int) -> tuple[Lower, Lift]:
        """option, result and variant, with wasmtime-py's rule for when a value is a tagged
        `Variant` (the cases' Python classes clash) decided here, once."""
        cases = ty._cases()
        tagged = ty._tagged()
        compiled = []  # (name, name (size, addr), lower | None, lift | None, classes)
        for name, cty in cases:
            conv = self._compile(cty) if cty is not None else (None, None)
            compiled.append((name, self.static.name(name), conv[0], conv[1], _classes(cty)))
        by_tag = {c[0]: c for c in compiled}

        def pick(v: Any) -> tuple[Any, Any]:
            """(case, payload) for a value, as wasmtime-py's `_lower` picks it."""
            if tagged:
                if not isinstance(v, Variant):
                    raise TypeError("expected a Variant")
                case = by_tag.get(v.tag)
                if case is None:
                    raise ValueError(f"{v.tag!r} is not a case of {[c[0] for c in compiled]}")
                return case, v.payload
            for case in compiled:
                if case[2] is None:
                    if v is None:
                        return case, None
                elif isinstance(v, case[4]):
                    return case, v
            raise ValueError("value not valid for this variant")

        def payload_ptr(case: Any, payload: Any, a: Arena) -> int:
            if case[2] is None:
                return 0
            pmv, poff, paddr = a.alloc(VAL)
            case[2](payload, a, pmv, poff)
            return paddr

        def wrap(name: str, value: Any, has_payload: bool) -> Any:
            if tagged:
                return Variant(name, value) if has_payload else Variant(name)
            return value

        if kind == K_OPTION:
            none, some = compiled
            some_lower, some_lift = some[2], some[3]
            pack = _HEAD_Q.pack_into
            unpack = _Q.unpack_from
            if not tagged:
                def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
                    if v is None:
                        pack(mv, off, K_OPTION, 0)
                        return
                    pmv, poff, paddr = a.alloc(VAL)
                    some_lower(v, a, pmv, poff)
                    pack(mv, off, K_OPTION, paddr)

                def lift(addr: int) -> Any:
                    p = unpack(_MEM, addr + 8)[0]
                    return some_lift(p) if p else None
                return lower, lift

            def lower_t(v: Any, a: Arena, mv: memoryview, off: int) -> None:
                case, payload = pick(v)
                pack(mv, off, K_OPTION, payload_ptr(case, payload, a) if case is some else 0)

            def lift_t(addr: int) -> Any:
                p = unpack(_MEM, addr + 8)[0]
                return Variant("some", some_lift(p)) if p else Variant("none")
            return lower_t, lift_t

        if kind == K_RESULT:
            pack_r = _HEAD_BQ.pack_into
            unpack_r = struct.Struct("<?7xQ").unpack_from
            ok, err = compiled

            def lower_r(v: Any, a: Arena, mv: memoryview, off: int) -> None:
                case, payload = pick(v)
                pack_r(mv, off, K_RESULT, case is ok, payload_ptr(case, payload, a))

            def lift_r(addr: int) -> Any:
                is_ok, p = unpack_r(_MEM, addr + 8)
                case = ok if is_ok else err
                if case[3] is None:
                    return wrap(case[0], None, False)
                return wrap(case[0], case[3](p), True)
            return lower_r, lift_r

        pack_v = _HEAD_QQQ.pack_into
        unpack_v = struct.Struct("<QQQ").unpack_from

        def lower_v(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            case, payload = pick(v)
            n, p = case[1]
            pack_v(mv, off, K_VARIANT, n, p, payload_ptr(case, payload, a))

        def lift_v(addr: int) -> Any:
            n, d, p = unpack_v(_MEM, addr + 8)
            name = str(_MEM[d:d + n], "utf-8")
            case = by_tag[name]
            if case[3] is None:
                return wrap(name, None, False)
            return wrap(name, case[3](p), True)
        return lower_v, lift_v


# Record fields read and written inline: unsigned integers (a wrong type or an out-of-range value
# makes struct.error, which Func turns into ValueError before the guest is entered).
_INLINE = {wt.U8: (K_U8, "B"), wt.U16: (K_U16, "H"), wt.U32: (K_U32, "I"), wt.U64: (K_U64, "Q")}


def _bad_record(n: int, count: int) -> None:
    raise ValueError(f"record with {n} fields where the type has {count}")


def _number(ty: wt.ValType) -> tuple[Lower, Lift]:
    kind = {wt.Bool: K_BOOL, wt.S8: K_S8, wt.U8: K_U8, wt.S16: K_S16, wt.U16: K_U16, wt.S32: K_S32,
            wt.U32: K_U32, wt.S64: K_S64, wt.U64: K_U64, wt.F32: K_F32, wt.F64: K_F64,
            wt.Char: K_CHAR}[type(ty)]
    code = _NUM[kind]
    pack = struct.Struct("<B7x" + code).pack_into
    unpack = struct.Struct("<" + code).unpack_from
    if kind == K_BOOL:
        def lower_b(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            if not isinstance(v, bool):
                raise TypeError(f"expected bool, got {type(v).__name__}")
            pack(mv, off, kind, v)

        def lift_b(addr: int) -> bool:
            return _MEM[addr + 8] != 0
        return lower_b, lift_b
    if kind in (K_F32, K_F64):
        def lower_f(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            if not isinstance(v, float):
                raise TypeError(f"expected float, got {type(v).__name__}")
            pack(mv, off, kind, v)

        def lift_f(addr: int) -> float:
            return unpack(_MEM, addr + 8)[0]
        return lower_f, lift_f
    if kind == K_CHAR:
        def lower_c(v: Any, a: Arena, mv: memoryview, off: int) -> None:
            if not isinstance(v, str) or len(v) != 1:
                raise TypeError("expected a single-character str for char")
            pack(mv, off, kind, ord(v))

        def lift_c(addr: int) -> str:
            return chr(unpack(_MEM, addr + 8)[0])
        return lower_c, lift_c

    def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
        if not isinstance(v, int):
            raise TypeError(f"expected int, got {type(v).__name__}")
        try:
            pack(mv, off, kind, v)
        except struct.error:
            raise ValueError(f"{v} is out of range for {type(ty).__name__}") from None

    def lift(addr: int) -> int:
        return unpack(_MEM, addr + 8)[0]
    return lower, lift


def _string(kind: int) -> tuple[Lower, Lift]:
    pack = _HEAD_QQ.pack_into
    unpack = _QQ.unpack_from

    def lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
        if not isinstance(v, str):
            raise TypeError(f"expected str, got {type(v).__name__}")
        data = v.encode("utf-8")
        pack(mv, off, kind, len(data), a.bytes_at(data))

    def lift(addr: int) -> str:
        n, p = unpack(_MEM, addr + 8)
        return str(_MEM[p:p + n], "utf-8") if n else ""
    return lower, lift


_RESOURCE_PTR = POINTER(ffi.wasmtime_component_resource_any_t)


def _borrow(v: Any, a: Arena, mv: memoryview, off: int) -> None:
    # The C API copies the handle out of the box for the call; the box stays the ResourceAny's.
    if not isinstance(v, ResourceAny):
        raise TypeError(f"expected a ResourceAny, got {type(v).__name__}")
    _HEAD_Q.pack_into(mv, off, K_RESOURCE, _addr(v.ptr()))


def _own_lower(v: Any, a: Arena, mv: memoryview, off: int) -> None:
    raise Unsupported("own<resource> arguments are passed through wasmtime-py")


def _resource_lift(addr: int) -> ResourceAny:
    p = _Q.unpack_from(_MEM, addr + 8)[0]
    # Take the box, and leave a bool in its slot so deleting the result tree skips it.
    ctypes.memset(addr, 0, VAL)
    return ResourceAny._from_ptr(ctypes.cast(p, _RESOURCE_PTR))


# ---- functions ----

class Func:
    """One export, called through compiled converters. Built once per instance with the type
    read once (`func.type(store)`); calling it converts, calls and frees with no type lookups."""

    __slots__ = ("_func", "_faddr", "_store", "_ctx", "_lowers", "_lift", "_arena", "_result",
                 "_raddr", "_rmv", "_compiler", "name")

    def __init__(self, func: Any, store: Any, arena: Arena, name: str = "",
                 plan: tuple[Compiler, list[Lower], Lift | None] | None = None) -> None:
        self._func = func  # keeps the wasmtime_component_func_t alive
        self._faddr = ctypes.addressof(func._func)
        self._store = store
        self._ctx = _addr(store._context())
        self._compiler, self._lowers, self._lift = plan if plan is not None else compile_func(func.type(store))
        if any(lo is _own_lower for lo in self._lowers):
            raise Unsupported("own<resource> arguments are passed through wasmtime-py")
        self._arena = arena
        # The result slot. wasmtime assigns the result into it, dropping what it held, so between
        # calls it must hold a value with nothing to free: bool false (all zeros).
        self._result = ffi.wasmtime_component_val_t()
        self._raddr = ctypes.addressof(self._result)
        self._rmv = memoryview(self._result).cast("B")
        self.name = name

    def __call__(self, *args: Any) -> Any:
        lowers = self._lowers
        if len(args) != len(lowers):
            raise TypeError(f"{self.name}: {len(args)} arguments given, {len(lowers)} expected")
        arena = self._arena
        arena.reset()
        n = len(lowers)
        if n:
            mv, off, argv = arena.alloc(VAL * n)
            try:
                for i, lo in enumerate(lowers):
                    lo(args[i], arena, mv, off + VAL * i)
            except struct.error as exc:
                raise ValueError(f"{self.name}: an integer argument is out of range or not an integer ({exc})") from None
        else:
            argv = 0
        lift = self._lift
        raddr = self._raddr
        err = _func_call(self._faddr, self._ctx, argv, n, raddr if lift else 0, 1 if lift else 0)
        arena.release()
        if err:
            # A trap, the deadline, or an exception in a host import (kept by _on_import): the
            # instance is unusable either way, so it is always a WasmtimeError, caused by the
            # host's exception when there was one.
            error = WasmtimeError._from_ptr(ctypes.cast(err, POINTER(ffi.wasmtime_error_t)))
            cause, _enter.LAST_EXCEPTION = _enter.LAST_EXCEPTION, None
            raise error from cause
        if lift is None:
            return None
        try:
            return lift(raddr)
        finally:
            _val_delete(raddr)
            self._rmv[:16] = _FALSE


_FALSE = bytes(16)  # a bool false val_t's kind and payload


def compile_func(fty: Any) -> tuple[Compiler, list[Lower], Lift | None]:
    """The converters of one function type: (their Compiler, one lower per parameter, the lift
    of the result or None). Raises Unsupported for a type the compiled path does not handle."""
    if not SUPPORTED:
        raise Unsupported("the wasmtime C API layout is not the one this module knows")
    c = Compiler()
    lowers = [c.lower(ty) for _, ty in fty.params]
    result = fty.result
    return c, lowers, (c.lift(result) if result is not None else None)


# ---- host imports ----

_IMPORT_CALLBACK_T = CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_size_t)


class Import:
    """A host function for the guest, converted with compiled converters. The types come with
    the first call (the C API passes them to the callback) and are compiled then, once."""

    __slots__ = ("fn", "name", "_lifts", "_lower", "_arena", "_compiler", "_cache")

    def __init__(self, name: str, fn: Callable[..., Any], cache: dict[str, Any]) -> None:
        self.name, self.fn = name, fn
        self._lifts: list[Lift] | None = None
        self._lower: Lower | None = None
        self._arena = Arena(4096)
        self._cache = cache  # shared by the instances of one component: compile once

    def _compile(self, ty_raw: int) -> None:
        plan = self._cache.get(self.name)
        if plan is None:
            fty = wt.FuncType._from_ptr(ctypes.cast(ty_raw, POINTER(ffi.wasmtime_component_func_type_t)),
                                        owner=self)
            c = Compiler()
            result = fty.result
            plan = self._cache[self.name] = (c, [c.lift(ty) for _, ty in fty.params],
                                              c.lower(result) if result is not None else None)
        self._compiler, self._lifts, self._lower = plan

    def __call__(self, ty_raw: int, args: int, nargs: int, results: int, nresults: int) -> None:
        if self._lifts is None:
            self._compile(ty_raw)
        lifts = self._lifts
        assert lifts is not None and len(lifts) == nargs
        value = self.fn(*[li(args + VAL * i) for i, li in enumerate(lifts)])
        lower = self._lower
        if lower is None:
            return
        assert nresults == 1
        arena = self._arena
        arena.reset()
        mv, off, addr = arena.alloc(VAL)
        lower(value, arena, mv, off)
        # wasmtime drops the result slot after the callback: it must hold a Rust-owned copy.
        _val_clone(addr, results)
        arena.release()


def _on_import(idx: int | None, _context: int, ty: int, args: int, nargs: int, results: int,
               nresults: int) -> int:
    try:
        FUNCTIONS.get(idx or 0)(ty, args, nargs, results, nresults)
        return 0
    except Exception as exc:  # what wasmtime-py's catch_exceptions does: raised again after the call
        _enter.LAST_EXCEPTION = exc
        return _addr(WasmtimeError("python exception")._consume())


_ON_IMPORT = _IMPORT_CALLBACK_T(_on_import)
_ON_IMPORT_C = ctypes.cast(_ON_IMPORT, ffi.wasmtime_component_func_callback_t)


def add_import(linker_instance: Any, name: str, fn: Callable[..., Any], cache: dict[str, Any]) -> None:
    """`linker_instance.add_func(name, ...)` with compiled conversions; `fn` gets the arguments
    (no store)."""
    linker_instance._assert_not_locked()
    data = name.encode("utf-8")
    idx = FUNCTIONS.allocate(Import(name, fn, cache))
    err = ffi.wasmtime_component_linker_instance_add_func(
        linker_instance.ptr(), ctypes.create_string_buffer(data), len(data), _ON_IMPORT_C, idx, func_finalize)
    if err:
        raise WasmtimeError._from_ptr(err)
