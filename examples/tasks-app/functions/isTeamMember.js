// Rule helper: is `userId` an active member of a team, according to the membership directory?
//
// Used by the `teamMember` role of taskboard.projects:
//   {"%%true": {"%function": {"name": "isTeamMember", "arguments": ["%%user.id"]}}}
// Private (callable only from rules and other functions) and run as the system user, so the
// directory lookup itself is not subject to the rules of taskboard.memberships.
exports = async function (userId) {
  if (typeof userId !== "string" || userId.length === 0) {
    return false;
  }
  const memberships = context.services
    .get("mongodb-atlas")
    .db("taskboard")
    .collection("memberships");
  const membership = await memberships.findOne(
    { user_id: userId, status: "active", kind: { $ne: "contractor" } },
    { _id: 1 }
  );
  return membership !== null;
};
