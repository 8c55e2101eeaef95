"""Extract a self-contained JSON Schema (Draft 2020-12) bundle from OpenAI's OpenAPI spec.

Regenerates `tests/spec/openapi-schemas.json`, the schemas the tests validate the simulator's
bodies and streamed events against (never hand-written). Source: the public repository
openai/openai-openapi, file `openapi.json` (the same spec as `openapi.yaml`, read here with the
standard library), at the commit recorded in the bundle's `source`:

    python tests/spec/extract_schemas.py --git-dir /path/to/openai-openapi.git \
        --rev f85dbe223d40e1a31cba812ab2d755c7e98a92a3 --strip-docs --check
    python tests/spec/extract_schemas.py --spec openapi.json --commit <sha> --strip-docs --check

It takes the requested component schemas plus everything they reference transitively and
writes {"$schema", "source": {repo, commit, path, openapi, info_version}, "options", "roots",
"$defs"}, every `$ref: #/components/schemas/X` rewritten to `#/$defs/X`.

OpenAPI-isms converted for Draft 2020-12 (the spec says `openapi: 3.1.0` but keeps 3.0 leftovers):
  * `nullable: true` -> `type: [T, "null"]` (and null in `enum`), or `anyOf: [<schema>, null]`
    when the schema has no single type; the idiom `allOf: [{$ref: X}, {nullable: true}]` ->
    `anyOf: [X, null]`.
  * boolean `exclusiveMinimum`/`exclusiveMaximum` -> the numeric 2020-12 form.
  * `$recursiveRef: "#"` -> `$ref` to the enclosing component.
  * `x-*` extension keys dropped; `example` -> `examples` (or dropped with --strip-docs).
  * `discriminator` kept as an annotation (mapping refs rewritten).
  * `oneOf` kept (strict) unless --oneof-as-anyof: a few of the spec's oneOfs overlap
    (InputItem: EasyInputMessage vs InputMessage), so strict oneOf rejects some valid request
    bodies. Everything a server sends (responses, items, lists, events) is unambiguous.
jsonschema is only used by --check (every $def a valid 2020-12 schema, every $ref resolves).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = "openai/openai-openapi"
SPEC_PATH = "openapi.json"
COMPONENT_PREFIX = "#/components/schemas/"

DEFAULT_ROOTS = [
    # Responses API
    "Response",
    "ResponseStreamEvent",  # anyOf of every Response*Event variant
    "ResponseItemList",  # GET /responses/{id}/input_items
    "CreateResponse",  # POST /responses request body
    "InputItem",
    "OutputItem",
    # Conversations API
    "ConversationResource",
    "ConversationItem",
    "ConversationItemList",
    "DeletedConversationResource",
    "CreateConversationBody",
    "UpdateConversationBody",
    # errors
    "ErrorResponse",
    "Error",
    # Assistants (runs) API
    "RunObject",
    "RunStepObject",
    "RunStepDeltaObject",
    "MessageObject",
    "MessageDeltaObject",
    "ThreadObject",
    "AssistantStreamEvent",  # oneOf Thread/Run/RunStep/Message stream events + ErrorEvent + DoneEvent
    "ThreadStreamEvent",
    "RunStreamEvent",
    "RunStepStreamEvent",
    "MessageStreamEvent",
    "ErrorEvent",
    "DoneEvent",
    "ListRunsResponse",
    "ListRunStepsResponse",
]

# Keywords whose value is a map name -> schema, a list of schemas, or one schema.
SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
SCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
SCHEMA_SINGLE = {
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
}
DOC_KEYS = {"description", "title", "example", "examples"}


def pointer_escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def def_ref(name: str) -> str:
    return "#/$defs/" + pointer_escape(name)


class Converter:
    def __init__(self, components: dict, strip_docs: bool, oneof_as_anyof: bool = False):
        self.components = components
        self.strip_docs = strip_docs
        self.oneof_as_anyof = oneof_as_anyof
        self.stats: dict[str, int] = {}
        self.referenced: set[str] = set()  # component names seen in $ref / discriminator mappings

    def count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def ref_target(self, ref: str) -> str:
        if not ref.startswith(COMPONENT_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r} (only {COMPONENT_PREFIX}* is handled)")
        name = ref[len(COMPONENT_PREFIX) :]
        if name not in self.components:
            raise KeyError(f"$ref to missing component {name!r}")
        self.referenced.add(name)
        return name

    def convert(self, schema, owner: str):
        """Convert one schema (recursively). `owner` is the component it belongs to."""
        if isinstance(schema, bool):
            return schema
        if not isinstance(schema, dict):
            raise TypeError(f"{owner}: schema expected, got {type(schema).__name__}")
        out: dict = {}
        for key, value in schema.items():
            if key.startswith("x-"):
                self.count("dropped x-* key")
                continue
            if key in ("nullable", "$recursiveAnchor"):
                continue  # handled below
            if self.strip_docs and key in DOC_KEYS:
                continue
            if key == "$ref":
                out["$ref"] = def_ref(self.ref_target(value))
            elif key == "$recursiveRef":
                if value != "#":
                    raise ValueError(f"{owner}: unsupported $recursiveRef {value!r}")
                out["$ref"] = def_ref(owner)
                self.referenced.add(owner)
                self.count("$recursiveRef -> $ref")
            elif key in SCHEMA_MAPS:
                out[key] = {k: self.convert(v, owner) for k, v in value.items()}
            elif key == "oneOf" and self.oneof_as_anyof:
                branches = [self.convert(v, owner) for v in value]
                if "anyOf" in schema:  # keep both assertions
                    out.setdefault("allOf", []).append({"anyOf": branches})
                else:
                    out["anyOf"] = branches
                self.count("oneOf -> anyOf")
            elif key in SCHEMA_LISTS:
                out[key] = [self.convert(v, owner) for v in value]
            elif key in SCHEMA_SINGLE:
                out[key] = self.convert(value, owner)
            elif key == "example":
                out.setdefault("examples", []).append(value)
                self.count("example -> examples")
            elif key == "discriminator":
                disc = dict(value)
                if "mapping" in disc:
                    disc["mapping"] = {k: def_ref(self.ref_target(v)) for k, v in disc["mapping"].items()}
                out[key] = disc
            else:
                out[key] = value  # plain keyword or annotation value (enum, const, default, ...)
        # 3.0 boolean exclusiveMinimum/Maximum -> 2020-12 numeric form
        for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(excl), bool):
                if out[excl] and bound in out:
                    out[excl] = out.pop(bound)
                else:
                    del out[excl]
                self.count(f"boolean {excl}")
        if schema.get("nullable") is True:
            out = self.make_nullable(out)
        out = self.allof_nullable(schema, out)
        return out

    def allof_nullable(self, schema: dict, out: dict) -> dict:
        """3.0 idiom `allOf: [{$ref: X}, {nullable: true}]` means "X or null" (RunObject.tool_choice,
        RunObject.truncation_strategy, ...). Taken literally in 2020-12 it would reject null."""
        branches = schema.get("allOf")
        if not isinstance(branches, list):
            return out
        marker = [
            i
            for i, b in enumerate(branches)
            if isinstance(b, dict) and b.get("nullable") is True and set(b) <= DOC_KEYS | {"nullable"}
        ]
        if not marker:
            return out
        self.count("allOf [X, {nullable: true}] -> anyOf [X, null]")
        rest = [b for i, b in enumerate(out["allOf"]) if i not in marker]
        # docs of the marker branch move up; the remaining assertion is X (or allOf of several)
        for i in marker:
            for k in DOC_KEYS & set(branches[i]):
                if not self.strip_docs:
                    out.setdefault(k, branches[i][k])
        del out["allOf"]
        inner = rest[0] if len(rest) == 1 else {"allOf": rest}
        annotations = {k: out.pop(k) for k in list(out) if k in DOC_KEYS | {"default", "deprecated"}}
        if out:  # other assertions beside allOf stay alongside
            inner = {"allOf": [inner, out]}
        return {**annotations, "anyOf": [inner, {"type": "null"}]}

    def make_nullable(self, out: dict) -> dict:
        self.count("nullable: true")
        typ = out.get("type")
        if isinstance(typ, str) and not any(k in out for k in ("$ref", "allOf", "anyOf", "oneOf")):
            out["type"] = [typ, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
            if "const" in out:
                out["enum"] = [out.pop("const"), None]
            return out
        if isinstance(typ, list):
            if "null" not in typ:
                out["type"] = [*typ, "null"]
            return out
        # No single type: keep annotations outside, the assertion inside an anyOf with null.
        annotations = {k: out.pop(k) for k in list(out) if k in DOC_KEYS | {"default", "deprecated"}}
        return {**annotations, "anyOf": [out, {"type": "null"}]}


def bundle_defs(conv: Converter, roots: list[str]) -> dict:
    """Convert the roots and every component they reference, transitively (sorted by name).

    References are found by the schema-aware converter itself, so property names such as
    `default` or `example` and values inside `enum`/`examples` are never mistaken for schemas.
    """
    done: dict[str, dict] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        if name not in conv.components:
            raise KeyError(f"component schema {name!r} not in the spec")
        conv.referenced = set()
        done[name] = conv.convert(conv.components[name], name)
        todo.extend(conv.referenced - done.keys())
    return {name: done[name] for name in sorted(done)}


def load_spec(args) -> tuple[dict, dict]:
    """Return (spec, source) from --spec or --git-dir."""
    if args.git_dir:
        git = ["git", "--git-dir", args.git_dir]
        commit = subprocess.run(
            git + ["rev-parse", args.rev + "^{commit}"], check=True, capture_output=True, text=True
        ).stdout.strip()
        text = subprocess.run(git + ["show", f"{commit}:{args.path}"], check=True, capture_output=True).stdout
        spec = json.loads(text)
    else:
        commit = args.commit
        spec = json.loads(Path(args.spec).read_bytes())
    source = {
        "repo": args.repo,
        "commit": commit,
        "path": args.path,
        "openapi": spec.get("openapi"),
        "info_version": spec.get("info", {}).get("version"),
    }
    return spec, source


def check(bundle: dict) -> None:
    """Every $def is a valid 2020-12 schema and every $ref resolves inside the bundle."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(bundle)
    defs = bundle["$defs"]

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.removeprefix("#/$defs/").replace("~1", "/").replace("~0", "~")
                if name not in defs:
                    raise ValueError(f"dangling $ref {ref}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(defs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", help="path to openapi.json")
    src.add_argument("--git-dir", help="git dir of openai/openai-openapi (e.g. a bare mirror)")
    ap.add_argument("--rev", default="HEAD", help="revision to read with --git-dir (default HEAD)")
    ap.add_argument("--path", default=SPEC_PATH, help="spec path inside the repo (default openapi.json)")
    ap.add_argument("--repo", default=REPO, help="recorded as source.repo")
    ap.add_argument("--commit", help="recorded as source.commit with --spec")
    ap.add_argument("--names", nargs="+", default=DEFAULT_ROOTS, help="component schemas to include")
    ap.add_argument("--strip-docs", action="store_true", help="drop description/title/example(s)")
    ap.add_argument(
        "--oneof-as-anyof",
        action="store_true",
        help="turn every oneOf into anyOf: the spec's oneOfs are not all mutually exclusive "
        "(InputItem: EasyInputMessage vs Item/InputMessage), so strict oneOf rejects "
        "some valid request bodies",
    )
    ap.add_argument("--check", action="store_true", help="validate the bundle with jsonschema")
    ap.add_argument("--out", default=str(Path(__file__).with_name("openapi-schemas.json")))
    args = ap.parse_args(argv)

    spec, source = load_spec(args)
    components = spec["components"]["schemas"]
    conv = Converter(components, args.strip_docs, args.oneof_as_anyof)
    defs = bundle_defs(conv, args.names)
    bundle = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "source": source,
        "options": {"strip_docs": args.strip_docs, "oneof_as_anyof": args.oneof_as_anyof},
        "roots": list(args.names),
        "$defs": defs,
    }
    if args.check:
        check(bundle)
    Path(args.out).write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n")
    size = Path(args.out).stat().st_size
    print(
        f"{args.out}: {len(defs)} schemas from {len(args.names)} roots, {size:,} bytes; "
        f"{source['repo']}@{source['commit']}:{source['path']} (openapi {source['openapi']})",
        file=sys.stderr,
    )
    for what, n in sorted(conv.stats.items()):
        print(f"  converted {what}: {n}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
