// kub-demo's network page: the discovery view of each service of the chain, as the frontend
// gathered them (GET /network/discovery). Everything is shown with textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  // podName is the pod field of an X-Served-By value ("tasks tasks-5d2 10.244.0.7 node-1 v0.1.0").
  function podName(servedBy) {
    const f = (servedBy || "").split(/\s+/);
    return f.length >= 2 ? f[1] : "";
  }

  function peerItem(peer) {
    const dd = el("dd");
    const vars = Object.entries(peer.variables || {}).map(([k, v]) => k + "=" + v).join(", ");
    dd.append(el("div", "found by " + peer.source + (vars ? " (" + vars + ")" : "") + ": " + peer.url));
    if (peer.error) {
      dd.append(el("div", peer.host + " does not resolve now: " + peer.error, "failed"));
    } else {
      const addrs = peer.resolvesTo || [];
      const line = el("div", peer.host + " resolves now to " + addrs.length + (addrs.length === 1 ? " address: " : " addresses: ") + addrs.join(", "));
      line.className = "resolves";
      line.dataset.count = String(addrs.length);
      dd.append(line);
    }
    return dd;
  }

  function viewSection(entry) {
    const s = el("section", undefined, "view");
    s.id = "view-" + entry.service;
    const pod = podName(entry.pod);
    s.append(el("h2", entry.service + (pod ? ": pod " + pod : "")));
    if (entry.off) {
      s.append(el("p", entry.off, "quiet off"));
      return s;
    }
    s.append(el("p", "From " + entry.from + (entry.setting ? " (" + entry.setting + ")" : ""), "quiet"));
    if (entry.error) {
      s.append(el("p", entry.error, "failed"));
      return s;
    }
    const v = entry.view;
    if (v.warnings && v.warnings.length) {
      const ul = el("ul", undefined, "warnings");
      v.warnings.forEach((w) => ul.append(el("li", w)));
      s.append(ul);
    }
    const dl = el("dl");
    for (const peer of v.peers || []) {
      dl.append(el("dt", "how " + v.service + " finds " + peer.name), peerItem(peer));
    }
    if (!(v.peers || []).length) dl.append(el("dt", v.service + " calls no other service"));
    const search = (v.resolver && v.resolver.search) || [];
    dl.append(el("dt", "search domains (tried after a short name)"),
      el("dd", search.length ? search.join(" ") : "none (outside Kubernetes, a short name is looked up as it is)"));
    const names = Object.keys(v.serviceVariables || {}).sort();
    dl.append(el("dt", "service variables Kubernetes injected (" + names.length + ")"));
    const dd = el("dd", names.length ? "" : "none (not in a pod, or no Service existed when this pod started)");
    if (names.length) {
      const details = el("details");
      details.append(el("summary", names.slice(0, 3).join(", ") + (names.length > 3 ? ", …" : "")));
      const ul = el("ul");
      names.forEach((n) => ul.append(el("li", n + "=" + v.serviceVariables[n])));
      details.append(ul);
      dd.append(details);
    }
    dl.append(dd);
    s.append(dl);
    return s;
  }

  async function look() {
    $("look").disabled = true;
    $("status").textContent = "Looking…";
    $("error").hidden = true;
    try {
      const resp = await fetch("network/discovery", { cache: "no-store" });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data && data.message ? data.message : "the frontend answered " + resp.status);
      $("off").hidden = data.enabled;
      $("off").textContent = data.enabled ? "" : data.off;
      const warnings = $("warnings");
      warnings.replaceChildren();
      for (const entry of data.views) {
        for (const w of (entry.view && entry.view.warnings) || []) warnings.append(el("li", entry.service + ": " + w));
      }
      $("all-warnings").hidden = warnings.children.length === 0;
      $("addresses-hint").hidden = !data.enabled;
      $("views").replaceChildren(...data.views.map(viewSection));
      $("status").textContent = data.enabled ? "Looked at " + new Date().toLocaleTimeString() + "." : "";
    } catch (e) {
      $("error").textContent = "The page could not read the views from the frontend (GET /network/discovery): " + e.message;
      $("error").hidden = false;
      $("status").textContent = "";
    } finally {
      $("look").disabled = false;
    }
  }

  $("look").addEventListener("click", look);
  look();
})();
