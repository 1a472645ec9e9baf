"""HCL check of the plugin-only keys (python-hcl2, since Debian's packer 1.6.6 cannot).

usage: check_plugin_only.py CORE PLUGIN_ONLY MERGED_DIR
Asserts that
  * plugin-only.hcl holds exactly a `packer` block (required_plugins.amazon from
    github.com/hashicorp/amazon) and a `source "amazon-ebs" "ringbolt"` block;
  * that source block sets no key the core template already sets (no overrides,
    no duplicates: the merge only adds), and enforces IMDSv2;
  * the merged template parses and its source block has the union of both key sets;
  * the core template's source really is arm64 + ENA.
Prints the plugin-only keys, one per line, for the old-packer rejection test.
"""
import sys

import hcl2


def unq(v):
    return v[1:-1] if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"' else v


def keys(block):
    return {k for k in block if not k.startswith("__")}


def source_block(doc, path):
    srcs = doc.get("source", [])
    assert len(srcs) == 1, f"{path}: expected one source block"
    (typ, inner), = srcs[0].items()
    (name, body), = inner.items()
    assert (unq(typ), unq(name)) == ("amazon-ebs", "ringbolt"), (path, typ, name)
    return body


core_path, plug_path, merged_dir = sys.argv[1:4]
core = hcl2.load(open(core_path))
plug = hcl2.load(open(plug_path))
merged = hcl2.load(open(f"{merged_dir}/ringbolt.pkr.hcl"))
versions = hcl2.load(open(f"{merged_dir}/versions.pkr.hcl"))

assert keys(plug) == {"packer", "source"}, f"plugin-only.hcl: unexpected top-level blocks {keys(plug)}"
(pk,) = plug["packer"]
(rp,) = pk["required_plugins"]
assert unq(rp["amazon"]["source"]) == "github.com/hashicorp/amazon", rp
assert "packer" not in core, "core template must not carry a packer block (1.6.6 rejects required_plugins)"
assert versions["packer"] == plug["packer"], "versions.pkr.hcl differs from plugin-only's packer block"

core_src = source_block(core, core_path)
plug_src = source_block(plug, plug_path)
merged_src = source_block(merged, "merged")
overlap = keys(core_src) & keys(plug_src)
assert not overlap, f"plugin-only keys also set in the core template: {sorted(overlap)}"
assert keys(merged_src) == keys(core_src) | keys(plug_src), "merge lost or invented keys"
assert unq(plug_src["imds_support"]) == "v2.0", plug_src
(mo,) = plug_src["metadata_options"]
assert unq(mo["http_tokens"]) == "required", mo
assert core_src["ena_support"] is True
(flt,) = core_src["source_ami_filter"]
assert unq(flt["filters"]["architecture"]) == "arm64", flt
for k in sorted(keys(plug_src)):
    print(k)
