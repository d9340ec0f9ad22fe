# -*- test-case-name: tests.test_codegen -*-
"""Fast decoders and encoders for item bodies, generated from their `construct` schemas.

`construct` interprets a schema field by field through several layers of calls; a hand-written
`struct` codec is 10 to 30 times faster.  This module walks an item's ``BODY`` once and writes
the hand-written codec for it: one Python function that reads a bytes buffer at an explicit
position with precomputed `struct.Struct` objects (a run of fixed-width fields is one
``unpack_from``), and one that appends to a ``bytearray``.  The schema stays the single
description of the format; the generated code is derived from it.

Safety rests on three rules:

* Every count, length and TLV header is checked against the same named limit and the same
  bytes left as the construct checks it, before any loop or allocation it sizes.
* A generated decoder never reports an error: any check that fails (or any exception at all)
  makes `pqi.wire.item` run the core construct parser on the same bytes, so the error raised is
  exactly the precise one (type, field, offset) it always was.  A generated encoder likewise
  hands any failure to the construct builder.
* Only constructs listed here are generated.  A schema holding anything else (a custom
  construct of a service, an ``ExprAdapter`` with unknown functions) gets no generated code and
  keeps the compiled-construct path; nothing is guessed.

Semantics that live in a function (string sanitising, the address quirk, key ids) are shared
with the constructs by calling the very same function.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import construct as c

from pqi.wire import address, compound, fields, tlv, tlvvalues
from pqi.wire import tlvtypes as T  # noqa: N812  (RetroShare's TLV_TYPE_ prefix, shortened)
from pqi.wire.limits import HEADER_SIZE, MAX_CONTAINER_COUNT, TLV_HEADER_SIZE

if TYPE_CHECKING:
    from pqi.wire.item import PQItem

__all__ = ["UnsupportedSchemaError", "Encoders", "decoder_source", "encoder_source",
           "make_decoder", "make_encoder"]

#: A generated decoder: (buffer, start, end) -> item; raises (anything) when core must decide.
Decoder = Callable[[bytes, int, int], Any]


#: Most flag values remembered per flags field (a peer choosing values cannot grow it further).
_FLAG_CACHE = 256


class UnsupportedSchemaError(Exception):
    """The schema holds a construct this generator does not know; keep the construct path."""


class _GiveUpError(Exception):
    """Raised by generated decoders when a check fails; the core parser then decides."""


#: Constructs that always consume at least one TLV header (so a loop over them ends).
_TLV_KINDS = (tlv.TLV, tlv._StringTLV, tlv._FixedTLV, tlv._BinaryTLV, tlv._IdSetTLV,
              tlv._TLVList, tlv._CompoundTLV, tlv._MapTLV, tlvvalues._FileSetTLV,
              address._AddressTLV, tlvvalues._KeyIdString)


def _unwrap(con: c.Construct) -> c.Construct:
    while type(con) is c.Renamed:
        con = con.subcon
    return con


def _fixed_code(con: c.Construct) -> tuple[str, int] | None:
    """The big-endian `struct` code and size of a fixed-width field, if ``con`` is one."""
    con = _unwrap(con)
    if type(con) in (fields._Int, c.FormatField) and con.fmtstr[0] == ">":
        return con.fmtstr[1:], con.length
    if type(con) is fields._Bool:
        return "?", 1  # unpacks to (byte != 0) and packs truthiness, as _Bool does
    return None


def _packable(con: c.Construct) -> tuple[str, str] | None:
    """(struct code, encoding template) for a field one ``pack``/``unpack`` handles, flags too."""
    con = _unwrap(con)
    if type(con) is compound._FlagsField:
        code = _fixed_code(con.subcon)
        return (code[0], "int({})") if code is not None and code[0] != "?" else None
    code = _fixed_code(con)
    return (code[0], "{}") if code is not None else None


def _positional(factory: Any, args: dict[str, str]) -> list[str] | None:
    """The parameter order in which ``factory`` binds ``args`` positionally as by keyword.

    Only for plain classes whose signature is exactly those names, all positional-or-keyword
    (dataclasses, item classes); anything else keeps keyword arguments.
    """
    if not isinstance(factory, type) or type(factory) is not type:
        return None
    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params):
        return None
    order = [p.name for p in params]
    return order if sorted(order) == sorted(args) else None


def _flag(flags: type, cache: dict[int, Any], value: int) -> Any:
    member = flags(value)
    if len(cache) < _FLAG_CACHE:
        cache[value] = member
    return member


def _tlv_kind(con: c.Construct) -> bool:
    con = _unwrap(con)
    while type(con) in (compound._Tuple, compound._FlagsField):
        con = _unwrap(con.subcon)
    return type(con) in _TLV_KINDS


class _Writer:
    """Source text with indentation, fresh local names and a namespace of constants."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1
        self.names: dict[int, str] = {}
        self.ns: dict[str, Any] = {"_GiveUpError": _GiveUpError}
        self.structs: dict[str, str] = {}
        self.counter = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    @contextmanager
    def block(self, head: str) -> Iterator[None]:
        self.line(head)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def var(self, hint: str = "v") -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def const(self, obj: Any, hint: str = "K") -> str:
        name = self.names.get(id(obj))
        if name is None:
            self.counter += 1
            name = self.names[id(obj)] = f"_{hint}{self.counter}"
            self.ns[name] = obj
        return name

    def struct(self, fmt: str) -> str:
        name = self.structs.get(fmt)
        if name is None:
            self.counter += 1
            name = self.structs[fmt] = f"_S{self.counter}"
            self.ns[name] = struct.Struct(fmt)
        return name

    def source(self, head: str) -> str:
        return "\n".join([head, *self.lines]) + "\n"


# --- decoders -------------------------------------------------------------------------------

class _Dec(_Writer):
    """Emits code reading ``buf`` from local ``pos`` up to a named end; values into locals."""

    def fail_if(self, cond: str) -> None:
        self.line(f"if {cond}: raise _GiveUpError")

    def value(self, con: c.Construct, end: str) -> str:
        """Emit the reading of one ``con``; return the local holding its value."""
        con = _unwrap(con)
        kind = type(con)
        method = getattr(self, "_" + kind.__name__.lstrip("_"), None)
        if method is None or kind not in _DECODABLE:
            raise UnsupportedSchemaError(f"{kind.__module__}.{kind.__qualname__}")
        return method(con, end)

    def fields(self, struct_: c.Construct, end: str) -> dict[str, str]:
        """Emit a Struct's fields; runs of fixed-width fields become one ``unpack_from``."""
        struct_ = _unwrap(struct_)
        if type(struct_) is not c.Struct:
            raise UnsupportedSchemaError(f"{type(struct_).__name__} where a Struct was expected")
        out: dict[str, str] = {}
        subcons = list(struct_.subcons)
        i = 0
        while i < len(subcons):
            run = []
            while i < len(subcons) and _packable(subcons[i]) is not None:
                run.append(subcons[i])
                i += 1
            if run:
                self._fixed_run(run, end, out)
                continue
            sc = subcons[i]
            i += 1
            v = self.value(sc, end)
            if sc.name:
                out[sc.name] = v
        return out

    def _fixed_run(self, run: list[c.Construct], end: str, out: dict[str, str]) -> None:
        codes = [_packable(sc) for sc in run]
        fmt = ">" + "".join(code for code, _ in codes)  # type: ignore[misc]
        size = struct.calcsize(fmt)
        names = [self.var() for _ in run]
        self.fail_if(f"pos + {size} > {end}")
        target = ", ".join(names) + ("," if len(names) == 1 else "")
        self.line(f"{target} = {self.struct(fmt)}.unpack_from(buf, pos)")
        self.line(f"pos += {size}")
        for sc, v in zip(run, names, strict=True):
            flags = _unwrap(sc)
            if type(flags) is compound._FlagsField:
                raw, v = v, self.var()
                self.flags(flags.flags, raw, v)
            if sc.name:
                out[sc.name] = v

    def _Int(self, con: c.Construct, end: str) -> str:  # noqa: N802
        return self._single(con, end)

    def _Bool(self, con: c.Construct, end: str) -> str:  # noqa: N802
        return self._single(con, end)

    def _FormatField(self, con: c.Construct, end: str) -> str:  # noqa: N802
        if con.fmtstr[0] != ">":
            v = self.var()
            self.fail_if(f"pos + {con.length} > {end}")
            self.line(f"{v}, = {self.struct(con.fmtstr)}.unpack_from(buf, pos)")
            self.line(f"pos += {con.length}")
            return v
        return self._single(con, end)

    def _single(self, con: c.Construct, end: str) -> str:
        code, size = _fixed_code(con)  # type: ignore[misc]
        v = self.var()
        self.fail_if(f"pos + {size} > {end}")
        self.line(f"{v}, = {self.struct('>' + code)}.unpack_from(buf, pos)")
        self.line(f"pos += {size}")
        return v

    def _IdField(self, con: Any, end: str) -> str:  # noqa: N802
        n = con.idtype.LENGTH
        v = self.var()
        self.fail_if(f"pos + {n} > {end}")
        self.line(f"{v} = _new({self.const(con.idtype, 'T')}, buf[pos:pos + {n}])")
        self.line(f"pos += {n}")
        return v

    def _length(self, end: str, maximum: int, unit: int) -> str:
        """A u32 count checked against ``maximum`` and against the bytes left (``_read_length``)."""
        n = self.var("n")
        self.fail_if(f"pos + 4 > {end}")
        self.line(f"{n}, = _U32.unpack_from(buf, pos)")
        self.line("pos += 4")
        left = f"{end} - pos"
        self.fail_if(f"{n} > {maximum} or {n}{f' * {unit}' if unit != 1 else ''} > {left}")
        return n

    def _RsString(self, con: Any, end: str) -> str:  # noqa: N802
        n = self._length(end, fields.MAX_RAW_MEMORY, 1)
        v = self.var()
        self.line(f"{v} = buf[pos:pos + {n}].decode('utf-8', 'surrogateescape')")
        self.line(f"pos += {n}")
        return v

    def _RawMemory(self, con: Any, end: str) -> str:  # noqa: N802
        n = self._length(end, con.maximum, 1)
        v = self.var()
        self.line(f"{v} = buf[pos:pos + {n}]")
        self.line(f"pos += {n}")
        return v

    def _CappedBytes(self, con: Any, end: str) -> str:  # noqa: N802
        n = self._length(end, con.maximum, 1)  # the limit, then read_exact's bytes-left check
        v = self.var()
        self.line(f"{v} = buf[pos:pos + {n}]")
        self.line(f"pos += {n}")
        return v

    def _BoundedArray(self, con: Any, end: str) -> str:  # noqa: N802
        n = self._length(end, MAX_CONTAINER_COUNT, con.min_size)
        v = self.var("a")
        fixed = _fixed_code(con.subcon)
        if fixed is not None and fixed[0] != "?":
            code, size = fixed
            self.fail_if(f"pos + {n} * {size} > {end}")
            self.line(f"{v} = list(_unpack_from('>%d{code}' % {n}, buf, pos))")
            self.line(f"pos += {n} * {size}")
            return v
        self.line(f"{v} = []")
        with self.block(f"for _ in range({n}):"):
            x = self.value(con.subcon, end)
            self.line(f"{v}.append({x})")
        return v

    def _Tuple(self, con: Any, end: str) -> str:  # noqa: N802
        inner = self.value(con.subcon, end)
        v = self.var()
        self.line(f"{v} = tuple({inner})")
        return v

    def _FlagsField(self, con: Any, end: str) -> str:  # noqa: N802
        inner = self.value(con.subcon, end)
        v = self.var()
        self.flags(con.flags, inner, v)
        return v

    def flags(self, flags: type, value: str, target: str) -> None:
        """``target = flags(value)``, through a small cache of the members already seen.

        An `enum.IntFlag` returns the same (pseudo-)member object for the same value every
        time, so the cache changes nothing but the cost (a third of a small item's decode).
        """
        cache = self.const({}, "FC")
        self.line(f"{target} = {cache}.get({value})")
        self.line(f"if {target} is None: {target} = _flag({self.const(flags, 'F')}, {cache}, "
                  f"{value})")

    def call(self, factory: Any, args: dict[str, str]) -> str:
        """The call ``factory(**args)``, written positionally where that binds the same."""
        order = _positional(factory, args)
        fn = self.const(factory, "D")
        if order is None:
            return f"{fn}({', '.join(f'{n}={x}' for n, x in args.items())})"
        return f"{fn}({', '.join(args[n] for n in order)})"

    def _DataclassStruct(self, con: Any, end: str) -> str:  # noqa: N802
        got = self.fields(con.subcon, end)
        v = self.var()
        self.line(f"{v} = {self.call(con.factory, {n: got[n] for n in con.names})}")
        return v

    def _IdCollection(self, con: Any, end: str) -> str:  # noqa: N802
        size = con.idtype.LENGTH
        n = self._length(end, MAX_CONTAINER_COUNT, size)
        v = self.var()
        kind = "frozenset" if con.as_set else "tuple"
        t = self.const(con.idtype, "T")
        self.line(f"{v} = {kind}([_new({t}, buf[i:i + {size}]) "
                  f"for i in range(pos, pos + {n} * {size}, {size})])")
        self.line(f"pos += {n} * {size}")
        return v

    # TLVs --------------------------------------------------------------------------------

    def head(self, tlv_type: int | None, end: str) -> tuple[str, str]:
        """A TLV header as ``_read_tlv`` checks it; leaves ``pos`` on the payload.

        Returns the locals holding the payload's end and the TLV's total length.
        """
        ty, ln, pend = self.var("t"), self.var("l"), self.var("e")
        self.fail_if(f"pos + 6 > {end}")
        self.line(f"{ty}, {ln} = _HDR.unpack_from(buf, pos)")
        type_check = f"{ty} != {tlv_type} or " if tlv_type is not None else ""
        self.fail_if(f"{type_check}{ln} < 6 or {ln} > {end} - pos")
        self.line(f"{pend} = pos + {ln}")
        self.line("pos += 6")
        return pend, ln

    def _TLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(con.tlv_type, end)
        v = self.value(con.payload, pend)
        if con.whole:
            self.fail_if(f"pos != {pend}")
        else:
            self.line(f"pos = {pend}")
        return v

    def _StringTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(con.tlv_type, end)
        v = self.var("s")
        self.line(f"{v} = _sanitise({con.tlv_type}, buf[pos:{pend}])"
                  ".decode('utf-8', 'surrogateescape')")
        self.line(f"pos = {pend}")
        return v

    def _FixedTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, ln = self.head(con.tlv_type, end)
        v = self.var()
        self.fail_if(f"{ln} != {TLV_HEADER_SIZE + con.fmt.size}")
        self.line(f"{v}, = {self.struct(con.fmt.format)}.unpack_from(buf, pos)")
        self.line(f"pos = {pend}")
        return v

    def _BinaryTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(con.tlv_type, end)
        v = self.var("b")
        if con.view:
            view = self.const(memoryview, "M")
            self.line(f"{v} = {view}(buf)[pos:{pend}] if type(buf) is bytes else buf[pos:{pend}]")
        else:
            self.line(f"{v} = buf[pos:{pend}]")
        self.line(f"pos = {pend}")
        return v

    def _IdSetTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(con.tlv_type, end)
        n = con.idtype.LENGTH
        v = self.var()
        self.fail_if(f"({pend} - pos) % {n}")
        self.line(f"{v} = frozenset([_new({self.const(con.idtype, 'T')}, buf[i:i + {n}]) "
                  f"for i in range(pos, {pend}, {n})])")
        self.line(f"pos = {pend}")
        return v

    def _TLVList(self, con: Any, end: str) -> str:  # noqa: N802
        if not _tlv_kind(con.element):
            raise UnsupportedSchemaError("list element that may consume nothing")
        pend, _ = self.head(con.tlv_type, end)
        v = self.var("a")
        self.line(f"{v} = []")
        with self.block(f"while pos < {pend}:"):
            x = self.value(con.element, pend)
            self.line(f"{v}.append({x})")
        return v

    def _skip_unknown(self, pend: str) -> None:
        """Skip a whole unknown sub-TLV as ``_read_tlv(sub, path, None)`` does."""
        ln = self.var("l")
        self.line(f"{ln}, = _U32.unpack_from(buf, pos + 2)")
        self.fail_if(f"{ln} < 6 or {ln} > {pend} - pos")
        self.line(f"pos += {ln}")

    def _CompoundTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(con.tlv_type, end)
        got = self.fields(con.mandatory, pend)
        values = {n: got[n] for n in con.names}
        slots = {}
        for o in con.optional:
            slots[o.name] = self.var("o")
            self.line(f"{slots[o.name]} = {self.const(o.default, 'd')}")
            values[o.name] = slots[o.name]
        with self.block(f"while {pend} - pos >= 6:"):
            ty = self.var("t")
            self.line(f"{ty}, = _U16.unpack_from(buf, pos)")
            keyword = "if"
            for tlv_type, o in con.by_type.items():
                if not _tlv_kind(o.construct):
                    raise UnsupportedSchemaError("optional part that may consume nothing")
                with self.block(f"{keyword} {ty} == {tlv_type}:"):
                    x = self.value(o.construct, pend)
                    self.line(f"{slots[o.name]} = {x}")
                keyword = "elif"
            with self.block("else:" if con.by_type else "if True:"):
                self._skip_unknown(pend)
        self.line(f"pos = {pend}")
        v = self.var()
        self.line(f"{v} = {self.call(con.factory, values)}")
        return v

    def _FileSetTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(T.FILESET, end)
        items, title, comment = self.var("a"), self.var("s"), self.var("s")
        self.line(f"{items} = []")
        self.line(f"{title} = {comment} = ''")
        with self.block(f"while {pend} - pos >= 6:"):
            ty = self.var("t")
            self.line(f"{ty}, = _U16.unpack_from(buf, pos)")
            with self.block(f"if {ty} == {T.FILEITEM}:"):
                self.line(f"{items}.append({self.value(tlvvalues.FileItemTLV, pend)})")
            with self.block(f"elif {ty} == {T.STR_TITLE}:"):
                self.line(f"{title} = {self.value(tlv.StringTLV(T.STR_TITLE), pend)}")
            with self.block(f"elif {ty} == {T.STR_COMMENT}:"):
                self.line(f"{comment} = {self.value(tlv.StringTLV(T.STR_COMMENT), pend)}")
            with self.block("else:"):
                self._skip_unknown(pend)
        self.line(f"pos = {pend}")
        v = self.var()
        self.line(f"{v} = {self.const(tlvvalues.FileSet, 'D')}(tuple({items}), {title}, "
                  f"{comment})")
        return v

    def _MapTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pair = con.pair
        seq = _unwrap(pair.payload)
        if type(seq) is not c.Sequence or len(seq.subcons) != 2:
            raise UnsupportedSchemaError("map pair that is not a (key, value) Sequence")
        key, value = seq.subcons
        pend, _ = self.head(con.map_type, end)
        v = self.var("m")
        self.line(f"{v} = {{}}")
        with self.block(f"while pos < {pend}:"):
            ppend, _ = self.head(pair.tlv_type, pend)
            k = self.value(key, ppend)
            x = self.value(value, ppend)
            if pair.whole:
                self.fail_if(f"pos != {ppend}")
            self.line(f"pos = {ppend}")
            self.line(f"{v}[{k}] = {x}")
        return v

    def _AddressTLV(self, con: Any, end: str) -> str:  # noqa: N802
        pend, _ = self.head(T.ADDRESS, end)
        v = self.var()
        self.line(f"{v} = _address(buf[pos:{pend}], '', 0)")
        self.line(f"pos = {pend}")
        return v

    def _KeyIdString(self, con: Any, end: str) -> str:  # noqa: N802
        text = self.value(con.text, end)
        v = self.var()
        self.line(f"{v} = _key_id({text}, '', 0)")
        return v


_DECODABLE = frozenset({
    fields._Int, fields._Bool, c.FormatField, fields._IdField, fields._RsString,
    fields._RawMemory, fields._BoundedArray, compound._Tuple, compound._FlagsField,
    compound._DataclassStruct, compound._IdCollection, compound._CappedBytes,
    tlv.TLV, tlv._StringTLV, tlv._FixedTLV, tlv._BinaryTLV, tlv._IdSetTLV, tlv._TLVList,
    tlv._CompoundTLV, tlv._MapTLV, tlvvalues._FileSetTLV, address._AddressTLV,
    tlvvalues._KeyIdString,
})


def _shared_names() -> dict[str, Any]:
    return {
        "_new": bytes.__new__, "_unpack_from": struct.unpack_from,
        "_HDR": struct.Struct(">HI"), "_U32": struct.Struct(">I"), "_U16": struct.Struct(">H"),
        "_sanitise": tlv.sanitise_string, "_address": address._address_from_payload,
        "_key_id": tlvvalues._key_id_from_text, "_flag": _flag,
        "_address_payload": address._address_payload,
    }


def decoder_source(cls: type[PQItem]) -> tuple[str, dict[str, Any]]:
    """The source of ``cls``'s decoder and the constants it uses (or `UnsupportedSchemaError`)."""
    w = _Dec()
    got = w.fields(cls.BODY, "end")
    w.fail_if("pos != end")
    w.line(f"return {w.call(cls, {n: got[n] for n in cls._FIELDS})}")
    w.ns.update(_shared_names())
    return w.source("def decode(buf, pos, end):"), w.ns


def make_decoder(cls: type[PQItem]) -> Decoder:
    """``cls``'s generated ``decode(buf, start, end) -> item`` (or `UnsupportedSchemaError`)."""
    return _compile(*decoder_source(cls))["decode"]  # type: ignore[no-any-return]


# --- encoders -------------------------------------------------------------------------------

class _Enc(_Writer):
    """Emits code appending the encoding of values (Python expressions) to local ``out``.

    Fixed-width writes (integers, counts, TLV headers, placeholders) are held back in
    ``pending`` and written by one ``pack`` when something else must touch ``out``: a chat
    item's flags, time and string TLV header are one call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[str, str | None]] = []
        #: A large blob that belongs at the end of ``out`` but is not copied into it yet (a
        #: `BinaryTLV` with ``view``, when nothing follows it): ``encode_item`` joins it on
        #: once, instead of copying it into ``out`` and ``out`` into the result.
        self.tail: str | None = None

    def size(self) -> str:
        """The encoding's length so far, the held-back blob included."""
        return "len(out)" if self.tail is None else f"(len(out) + len({self.tail}))"

    def settle(self) -> None:
        """Copy the held-back blob into ``out``: something is written after it."""
        if self.tail is not None:
            self.line(f"out += {self.tail}")
            self.tail = None

    def pack(self, code: str, expr: str | None) -> None:
        """Hold back a fixed-width write (``expr`` None: zero padding, ``code`` like ``6x``)."""
        self.pending.append((code, expr))

    def flush(self) -> None:
        if self.pending:
            self.settle()
            fmt = ">" + "".join(code for code, _ in self.pending)
            args = ", ".join(expr for _, expr in self.pending if expr is not None)
            self.pending = []
            self.line(f"out += {self.struct(fmt)}.pack({args})")

    def out(self, text: str) -> None:
        """A line that touches ``out``: everything held back goes first."""
        self.flush()
        self.settle()
        self.line(text)

    @contextmanager
    def block(self, head: str) -> Iterator[None]:
        self.flush()
        self.settle()
        with super().block(head):
            yield
            self.flush()

    def put(self, con: c.Construct, value: str) -> None:
        con = _unwrap(con)
        kind = type(con)
        method = getattr(self, "_" + kind.__name__.lstrip("_"), None)
        if method is None or kind not in _DECODABLE:
            raise UnsupportedSchemaError(f"{kind.__module__}.{kind.__qualname__}")
        method(con, value)

    def take(self, expr: str) -> str:
        """Evaluate ``expr`` once into a local."""
        v = self.var()
        self.line(f"{v} = {expr}")
        return v

    def plain(self, expr: str, kinds: str = "_SEQS") -> str:
        """``expr`` in a local, refused unless it is a plain container (or ``kinds``).

        The construct builder must see the value intact if this encoder gives up half way, so
        nothing that iterating would consume (a generator, an iterator) is iterated here.
        """
        v = self.take(expr)
        self.line(f"if not isinstance({v}, {kinds}): raise _GiveUpError")
        return v

    def fields(self, struct_: c.Construct, values: dict[str, str]) -> None:
        struct_ = _unwrap(struct_)
        if type(struct_) is not c.Struct:
            raise UnsupportedSchemaError(f"{type(struct_).__name__} where a Struct was expected")
        subcons = list(struct_.subcons)
        if any(not sc.name for sc in subcons):
            raise UnsupportedSchemaError("unnamed field")  # Struct's build would look up obj[None]
        i = 0
        while i < len(subcons):
            run = []
            while i < len(subcons) and _packable(subcons[i]) is not None:
                run.append(subcons[i])
                i += 1
            if run:
                for sc in run:
                    code, template = _packable(sc)  # type: ignore[misc]
                    self.pack(code, template.format(values[sc.name]))
                continue
            sc = subcons[i]
            i += 1
            self.put(sc, values[sc.name])

    def _Int(self, con: Any, value: str) -> None:  # noqa: N802
        self.pack(con.fmtstr[1:], value)

    def _Bool(self, con: Any, value: str) -> None:  # noqa: N802
        self.pack("?", value)  # truthiness, as _Bool writes

    def _FormatField(self, con: Any, value: str) -> None:  # noqa: N802
        if con.fmtstr[0] == ">":
            self.pack(con.fmtstr[1:], value)
        else:
            self.out(f"out += {self.struct(con.fmtstr)}.pack({value})")

    def _IdField(self, con: Any, value: str) -> None:  # noqa: N802
        v = self.take(value)
        self.line(f"if len({v}) != {con.idtype.LENGTH}: raise _GiveUpError")
        self.out(f"out += {v}")

    def _blob(self, data: str, maximum: int | None = None) -> None:
        d = self.take(data)
        if maximum is not None:
            self.line(f"if len({d}) > {maximum}: raise _GiveUpError")
        self.pack("I", f"len({d})")
        self.out(f"out += {d}")

    def _RsString(self, con: Any, value: str) -> None:  # noqa: N802
        self._blob(f"{value}.encode('utf-8', 'surrogateescape')")

    def _RawMemory(self, con: Any, value: str) -> None:  # noqa: N802
        self._blob(f"bytes({self.plain(value, '_BLOBS')})")

    def _CappedBytes(self, con: Any, value: str) -> None:  # noqa: N802
        self._blob(f"bytes({self.plain(value, '_BLOBS')})", con.maximum)

    def _BoundedArray(self, con: Any, value: str) -> None:  # noqa: N802
        items = self.take(f"list({self.plain(value)})")
        self.line(f"if len({items}) > {MAX_CONTAINER_COUNT}: raise _GiveUpError")
        self.pack("I", f"len({items})")
        fixed = _fixed_code(con.subcon)
        if fixed is not None:
            self.out(f"out += _pack('>%d{fixed[0]}' % len({items}), *{items})")
            return
        x = self.var("x")
        with self.block(f"for {x} in {items}:"):
            self.put(con.subcon, x)

    def _Tuple(self, con: Any, value: str) -> None:  # noqa: N802
        self.put(con.subcon, self.plain(value))

    def _FlagsField(self, con: Any, value: str) -> None:  # noqa: N802
        self.put(con.subcon, f"int({value})")

    def _DataclassStruct(self, con: Any, value: str) -> None:  # noqa: N802
        obj = self.take(value)
        got = {n: self.take(f"{obj}.{n}") for n in con.names}
        self.fields(con.subcon, got)

    def _IdCollection(self, con: Any, value: str) -> None:  # noqa: N802
        n = con.idtype.LENGTH
        v = self.plain(value)
        ids = self.take(f"sorted([bytes(x) for x in {v}])" if con.as_set
                        else f"[bytes(x) for x in {v}]")
        self.line(f"if len({ids}) > {MAX_CONTAINER_COUNT}: raise _GiveUpError")
        self.line(f"if any(len(x) != {n} for x in {ids}): raise _GiveUpError")
        self.pack("I", f"len({ids})")
        self.out(f"out += b''.join({ids})")

    @contextmanager
    def around(self, tlv_type: int) -> Iterator[None]:
        """A TLV whose payload the body writes: placeholder header, patched afterwards."""
        self.settle()  # the TLV starts after a held-back blob
        start = self.var("p")
        held = struct.calcsize(">" + "".join(code for code, _ in self.pending))
        self.line(f"{start} = len(out) + {held}")
        self.pack(f"{TLV_HEADER_SIZE}x", None)
        yield
        self.flush()  # patching the header writes nothing after a held-back blob
        self.line(f"_HDR.pack_into(out, {start}, {tlv_type}, {self.size()} - {start})")

    def _simple(self, tlv_type: int, data: str) -> None:
        d = self.take(data)
        self.pack("H", str(tlv_type))
        self.pack("I", f"len({d}) + 6")
        self.out(f"out += {d}")

    def _TLV(self, con: Any, value: str) -> None:  # noqa: N802
        with self.around(con.tlv_type):
            self.put(con.payload, value)

    def _StringTLV(self, con: Any, value: str) -> None:  # noqa: N802
        self._simple(con.tlv_type, f"{value}.encode('utf-8', 'surrogateescape')")

    def _FixedTLV(self, con: Any, value: str) -> None:  # noqa: N802
        self.pack("H", str(con.tlv_type))
        self.pack("I", str(TLV_HEADER_SIZE + con.fmt.size))
        self.pack(con.fmt.format.lstrip(">"), value)

    def _BinaryTLV(self, con: Any, value: str) -> None:  # noqa: N802
        if not con.view or self.depth != 1:
            self._simple(con.tlv_type, f"bytes({self.plain(value, '_BLOBS')})")
            return
        blob = self.plain(value, '_BLOBS')
        self.line(f"if type({blob}) is not bytes: {blob} = bytes({blob})")
        self.pack("H", str(con.tlv_type))
        self.pack("I", f"len({blob}) + 6")
        self.flush()
        self.settle()
        self.tail = blob

    def _IdSetTLV(self, con: Any, value: str) -> None:  # noqa: N802
        ids = self.take(f"sorted([bytes(x) for x in {self.plain(value)}])")
        self.line(f"if any(len(x) != {con.idtype.LENGTH} for x in {ids}): raise _GiveUpError")
        self._simple(con.tlv_type, f"b''.join({ids})")

    def _TLVList(self, con: Any, value: str) -> None:  # noqa: N802
        v = self.plain(value)
        with self.around(con.tlv_type):
            x = self.var("x")
            with self.block(f"for {x} in {v}:"):
                self.put(con.element, x)

    def _CompoundTLV(self, con: Any, value: str) -> None:  # noqa: N802
        obj = self.take(value)
        with self.around(con.tlv_type):
            got = {n: self.take(f"{obj}.{n}") for n in con.names}
            self.fields(con.mandatory, got)
            for o in con.optional:
                x = self.take(f"{obj}.{o.name}")
                with self.block(f"if {x} != {self.const(o.default, 'd')}:"):
                    self.put(o.construct, x)

    def _FileSetTLV(self, con: Any, value: str) -> None:  # noqa: N802
        obj = self.take(value)
        files = self.plain(f"{obj}.items")
        with self.around(T.FILESET):
            f = self.var("x")
            with self.block(f"for {f} in {files}:"):
                self.put(tlvvalues.FileItemTLV, f)
            with self.block(f"if {obj}.title:"):
                self.put(tlv.StringTLV(T.STR_TITLE), f"{obj}.title")
            with self.block(f"if {obj}.comment:"):
                self.put(tlv.StringTLV(T.STR_COMMENT), f"{obj}.comment")

    def _MapTLV(self, con: Any, value: str) -> None:  # noqa: N802
        seq = _unwrap(con.pair.payload)
        if type(seq) is not c.Sequence or len(seq.subcons) != 2:
            raise UnsupportedSchemaError("map pair that is not a (key, value) Sequence")
        key, val = seq.subcons
        obj = self.plain(value, "dict")
        with self.around(con.map_type):
            k = self.var("k")
            with self.block(f"for {k} in sorted({obj}):"), self.around(con.pair.tlv_type):
                self.put(key, k)
                self.put(val, f"{obj}[{k}]")

    def _AddressTLV(self, con: Any, value: str) -> None:  # noqa: N802
        self._simple(T.ADDRESS, f"_address_payload({value}, '')")

    def _KeyIdString(self, con: Any, value: str) -> None:  # noqa: N802
        v = self.take(value)
        self.line(f"if len({v}) != {fields.GxsId.LENGTH}: raise _GiveUpError")
        self.put(con.text, f"bytes({v}).hex()")


class Encoders(NamedTuple):
    """A class's generated encoders: of the body alone, and of the whole item."""

    #: ``body(item, out)`` appends the body to ``out``.
    body: Callable[[Any, bytearray], None]
    #: ``item(item)`` returns header and body; the caller checks the size limit.
    item: Callable[[Any], bytes]


def encoder_source(cls: type[PQItem]) -> tuple[str, dict[str, Any]]:
    """The source of ``cls``'s encoders and the constants they use; raises `UnsupportedSchemaError`.

    The body is written twice, once per function, so that a whole item costs one call.
    """
    w = _Enc()
    got = {n: w.take(f"item.{n}") for n in cls._FIELDS}
    w.fields(cls.BODY, got)
    w.flush()
    body, tail = w.lines, w.tail
    # The class's own header constants, written in (one encoder per class, `pqi.wire.item`):
    # three attribute lookups less per item.
    ids = [getattr(cls, name, None) for name in ("VERSION", "SERVICE", "SUBTYPE")]
    if not all(type(i) is int for i in ids):
        raise UnsupportedSchemaError(f"{cls.__name__} has no integer header ids")
    header = f"    _ITEM_HDR.pack_into(out, 0, {ids[0]}, {ids[1]}, {ids[2]}, {w.size()})"
    lines = ["def encode(item, out):", *body, *([f"    out += {tail}"] if tail else []),
             "    return None", "",
             "def encode_item(item):", f"    out = bytearray({HEADER_SIZE})", *body, header,
             f"    return b''.join((out, {tail}))" if tail else "    return bytes(out)"]
    w.ns.update(_shared_names())
    w.ns.update(_ZERO6=bytes(TLV_HEADER_SIZE), _pack=struct.pack, _ITEM_HDR=struct.Struct(">BHBI"),
                _SEQS=(list, tuple, set, frozenset, dict), _BLOBS=(bytes, bytearray, memoryview))
    return "\n".join(lines) + "\n", w.ns


def make_encoder(cls: type[PQItem]) -> Encoders:
    """``cls``'s generated encoders (see `Encoders`); raises `UnsupportedSchemaError`."""
    source, ns = encoder_source(cls)
    namespace = _compile(source, ns)
    return Encoders(namespace["encode"], namespace["encode_item"])


def _compile(source: str, ns: dict[str, Any]) -> dict[str, Any]:
    namespace = dict(ns)
    exec(compile(source, "<pqi.wire.codegen>", "exec"), namespace)  # noqa: S102
    return namespace
