# W1 (benches/data/w1/rules.json) in Rego.
#
# input.user is the `%%user` object; input.doc is the document (BSON converted to Rego values:
# ObjectId as its hex string, dates as milliseconds). `allow` is the document-level decision;
# `readable` is the set of readable fields (dotted leaf paths), computed in one query.
package rolegate.w1

import rego.v1

# The first role whose apply_when matches, in the rule file's order.
role := "owner" if {
	input.doc.owner_id == input.user.id
} else := "shared" if {
	input.user.id in input.doc.shared_with
} else := "public" if {
	input.doc.public == true
}

allow if role

shared_fields := {"_id", "owner_id", "title", "body", "status", "tags", "updated", "location.lat", "location.lng"}

public_fields := {"_id", "title", "status", "public"}

# The document's leaf paths: embedded documents are descended into (one level, as in W1);
# arrays, scalars and empty documents are leaves.
paths contains k if {
	some k, v in input.doc
	not is_object(v)
}

paths contains k if {
	some k, v in input.doc
	v == {}
}

paths contains concat(".", [k, k2]) if {
	some k, v in input.doc
	is_object(v)
	some k2, _ in v
}

readable contains p if {
	role == "owner"
	some p in paths
}

readable contains p if {
	role == "shared"
	some p in paths
	p in shared_fields
}

readable contains p if {
	role == "public"
	some p in paths
	p in public_fields
}
