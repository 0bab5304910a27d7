#!/usr/bin/env python3
"""Validates custom resources against the generated CRD schemas, offline.

Usage: validate_crs.py CRDS_YAML FILE...   (every RealtimeCluster / Namespace document)

The API server's structural-schema rules are applied as far as JSON Schema can: `nullable`
becomes a null type, unknown fields are refused unless the schema preserves them, and
`x-kubernetes-*` keywords are ignored (CEL rules are checked by the Rust tests). Prints one
line per document and exits 1 when any is invalid.
"""

import sys

import jsonschema
import yaml


def structural(schema):
    """JSON Schema equivalent of a CRD openAPIV3Schema node."""
    if not isinstance(schema, dict):
        return schema
    out = {k: structural(v) if isinstance(v, dict) else v for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in schema:
        out["properties"] = {k: structural(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(schema["additionalProperties"])
    if "items" in schema:
        out["items"] = structural(schema["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            out[key] = [structural(s) for s in schema[key]]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def load_schemas(path):
    schemas = {}
    with open(path) as f:
        for crd in yaml.safe_load_all(f):
            if not crd:
                continue
            group = crd["spec"]["group"]
            for version in crd["spec"]["versions"]:
                key = (f"{group}/{version['name']}", crd["spec"]["names"]["kind"])
                schema = structural(version["schema"]["openAPIV3Schema"])
                # metadata is checked by the API server itself.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["properties"]["apiVersion"] = {"type": "string"}
                schema["properties"]["kind"] = {"type": "string"}
                schemas[key] = schema
    return schemas


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    schemas = load_schemas(argv[1])
    failed = 0
    for path in argv[2:]:
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if not doc:
                    continue
                key = (doc.get("apiVersion"), doc.get("kind"))
                if key not in schemas:
                    continue
                errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc), key=str)
                name = f"{path}#{i} {key[1]}/{doc.get('metadata', {}).get('name')}"
                if errors:
                    failed += 1
                    for e in errors:
                        where = ".".join(str(p) for p in e.absolute_path) or "(root)"
                        print(f"INVALID {name}: {where}: {e.message}")
                else:
                    print(f"valid {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
