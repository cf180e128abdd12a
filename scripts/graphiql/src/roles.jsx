// The demo's role switch: which demo key (admin, agent, viewer) the headers
// editor holds, so a person sees row scope and field permissions change the
// same query's answer. The key is written into the headers editor, where the
// person can read it (and copy it for curl); a header typed by hand that is not
// one of the demo keys is left alone.
import { useEffect, useState } from "react";
import { useGraphiQL } from "@graphiql/react";

export function bearer(key) {
  return key ? JSON.stringify({ Authorization: `Bearer ${key}` }, null, 2) : "";
}

function holdsDemoKeyOrNothing(text, keys) {
  if (!text.trim()) return true;
  try {
    const auth = JSON.parse(text).Authorization || "";
    return Object.values(keys).some((key) => auth === `Bearer ${key}`);
  } catch {
    return false;
  }
}

export function RoleSwitch({ keys }) {
  const [role, setRole] = useState("admin");
  const headerEditor = useGraphiQL((state) => state.headerEditor);
  const activeTab = useGraphiQL((state) => state.activeTabIndex);
  useEffect(() => {
    if (!headerEditor) return;
    const wanted = bearer(keys[role]);
    const shown = headerEditor.getValue();
    if (shown !== wanted && holdsDemoKeyOrNothing(shown, keys)) headerEditor.setValue(wanted);
  }, [headerEditor, activeTab, role, keys]);
  return (
    <label className="crmgraph-role" title="the demo key the headers editor holds">
      Run as{" "}
      <select id="crmgraph-role" value={role} onChange={(event) => setRole(event.target.value)}>
        {Object.keys(keys).map((name) => (
          <option key={name} value={name}>{name}</option>
        ))}
      </select>
    </label>
  );
}
