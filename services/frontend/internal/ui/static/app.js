// kub-demo's tasks page. It runs in the browser: every call it makes goes from the
// learner's machine either to this page's own server (/api/…, which the frontend forwards
// to users and tasks inside the cluster) or, in direct mode, straight to the public URLs of
// users and tasks (which must then answer with CORS headers). Everything a service sends is
// shown with textContent, never parsed as HTML.
"use strict";

(function () {
  const config = window.kubDemoConfig || { mode: "proxy", usersURL: "/api", tasksURL: "/api" };
  const tokenKey = "kub-demo-token";
  const emailKey = "kub-demo-email";
  const $ = (id) => document.getElementById(id);

  const base = { users: config.usersURL, tasks: config.tasksURL };

  // A failure, in words that say which hop failed and why.
  class HopError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function where(hop) {
    return base[hop] === "/api" ? hop + " through the frontend's /api" : hop + " at " + base[hop];
  }

  // call sends one request to hop (users or tasks) and returns its JSON body, or throws a
  // HopError that names the hop and the cause.
  async function call(hop, method, path, body) {
    const started = performance.now();
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = sessionStorage.getItem(tokenKey);
    if (hop === "tasks" && token) headers["Authorization"] = "Bearer " + token;
    let resp;
    try {
      resp = await fetch(base[hop] + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      // fetch tells the page nothing more than this, by design: the browser's console has the details.
      let err;
      if (base[hop] === "/api") {
        err = new HopError("The browser could not reach the frontend (this page's server): it stopped, or the network is down.");
      } else {
        err = new HopError("The browser could not reach " + hop + " at " + base[hop] +
          ": nothing answers there, or " + hop + " did not allow this page's origin (CORS). The browser's console says which.");
      }
      addTrail(hop, method, path, null, null, err.message, performance.now() - started);
      throw err;
    }
    let data = null;
    if ((resp.headers.get("Content-Type") || "").includes("application/json")) {
      try { data = await resp.json(); } catch (e) { data = null; }
    }
    addTrail(hop, method, path, resp, data, "", performance.now() - started);
    if (resp.ok) return data || {};
    throw new HopError(describe(hop, resp, data), resp.status);
  }

  // The trail: which pod answered each hop of a request, read from the answer's headers.
  // X-Served-By holds one "service pod ip node version" per hop, in order (the frontend's,
  // then users' or tasks'), which the browser joins with ", "; X-Auth-Verified-By names the
  // auth pod that verified tasks' token, or "…; cached 4s ago" when tasks' cache did.
  const requestNames = { "POST /login": "log in", "POST /signup": "sign up", "GET /tasks": "list tasks", "POST /tasks": "store a task" };
  const trailLength = 8;

  function messageOf(data) {
    return data && typeof data.message === "string" ? data.message : "";
  }

  function servedBy(resp) {
    const value = resp.headers.get("X-Served-By");
    if (!value) return [];
    return value.split(",").map((v) => v.trim().split(/\s+/)).filter((f) => f.length >= 2)
      .map((f) => ({ service: f[0], pod: f[1] }));
  }

  function verifiedBy(resp) {
    const value = resp.headers.get("X-Auth-Verified-By");
    if (!value) return null;
    const [by, cached] = value.split("; cached ");
    const f = by.trim().split(/\s+/);
    const pod = f[1] && f[1] !== "(it" ? f[1] : "";
    // "4s ago" reads better as "4 s ago"; "1m5s ago" stays as Go wrote it.
    return { pod, cached: cached ? cached.replace(/^(\d+)s ago$/, "$1 s ago") : "" };
  }

  // chainOf is the chain as a learner reads it, e.g. "frontend frontend-7c9 → tasks tasks-5d2 →
  // auth auth-8f1 (cached 4 s ago)", and which hop's answer this is.
  function chainOf(hop, resp, data) {
    const hops = servedBy(resp);
    const through = base[hop] === "/api";
    if (hops.length === 0) {
      return { text: "No pod named: the answer carries no X-Served-By (the services run with SERVED_BY=false, or something in between removed it).", from: "" };
    }
    const parts = [];
    const named = (service) => hops.find((h) => h.service === service);
    if (through) {
      const fe = named("frontend");
      parts.push(fe ? "frontend " + fe.pod : "frontend (did not name its pod: SERVED_BY=false there)");
    }
    const upstream = named(hop);
    // The frontend's own failures: its proxy's (the upstream not reached, the body too large),
    // and a lab control of its own.
    const frontendAnswered = through && !upstream && ([502, 504, 413].includes(resp.status) ||
      messageOf(data).startsWith("Lab control: this pod of frontend "));
    if (upstream) {
      // A failure tasks or users answered itself (a lab control's, say) is marked at its hop.
      const failedHere = !resp.ok && hops[hops.length - 1] === upstream && !(resp.status === 503 && /auth/.test(messageOf(data)));
      parts.push(hop + " " + upstream.pod + (failedHere ? " ✗ " + resp.status : ""));
    } else if (frontendAnswered) {
      parts.push(hop + " ✗ not reached");
    } else {
      parts.push(hop + " (did not name its pod: SERVED_BY=false there)");
    }
    const v = verifiedBy(resp);
    const message = messageOf(data);
    if (v) {
      parts.push("auth " + (v.pod || "(did not name its pod)") + (v.cached ? " (cached " + v.cached + ")" : ""));
    } else if (upstream && hop === "users" && resp.ok) {
      parts.push("auth (users does not say which auth pod)");
    } else if (upstream && resp.status === 503 && /auth/.test(message)) {
      parts.push("auth ✗ failed or not reached");
    }
    // The answer came from the last hop that named itself.
    const last = hops[hops.length - 1];
    return { text: parts.join(" → "), from: last.service + " " + last.pod };
  }

  function addTrail(hop, method, path, resp, data, failure, ms) {
    const li = document.createElement("li");
    const name = requestNames[method + " " + path] || method + " " + path;
    li.dataset.request = name;
    const head = document.createElement("div");
    head.className = "request";
    const took = ms < 1000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(1) + " s";
    head.textContent = name + ": " + (resp ? resp.status + " in " + took : "no answer after " + took) + " ";
    const url = document.createElement("span");
    url.className = "quiet";
    url.textContent = method + " " + base[hop] + path;
    head.append(url);
    li.append(head);
    const chain = document.createElement("div");
    chain.className = "chain";
    let reason = failure;
    if (resp) {
      const c = chainOf(hop, resp, data);
      chain.textContent = c.text;
      if (!resp.ok) {
        reason = resp.status + " from " + (c.from || hop + " (it did not name its pod)") + ": " + (messageOf(data) || "(no JSON message)");
      }
    } else {
      chain.textContent = "No answer, so no pod named.";
    }
    li.append(chain);
    if (reason) {
      const why = document.createElement("div");
      why.className = "reason failed";
      why.textContent = reason;
      li.append(why);
    }
    const list = $("trail");
    list.prepend(li);
    while (list.children.length > trailLength) list.lastElementChild.remove();
    $("trail-section").hidden = false;
  }

  // describe says what a failed answer means for the learner.
  function describe(hop, resp, data) {
    const message = data && typeof data.message === "string" ? data.message : "";
    const said = message ? " It said: " + message : " (no JSON message: " + (resp.statusText || "an answer from something else in the way") + ")";
    switch (resp.status) {
      case 502:
      case 504:
        // The frontend's own answer: its message names the hop it could not reach.
        return message ? message + " (" + resp.status + ")" : "The frontend could not reach " + hop + " (" + resp.status + ").";
      case 401:
        if (hop === "tasks") return "tasks refused the token (401): log in again." + said;
        return "users refused the login (401): wrong email or password." + said;
      case 409:
        return "users refused the sign-up (409): that email has an account already." + said;
      case 422:
        return hop + " refused the input (422)." + said;
      case 413:
        return hop + " refused a body that large (413)." + said;
      case 429: {
        const wait = resp.headers.get("Retry-After");
        return hop + " is limiting attempts (429)" + (wait ? ": try again in " + wait + " seconds." : ".") + said;
      }
      case 503:
        // users and tasks name auth in their message when auth is what they could not reach.
        return hop + " is unavailable (503)." + said;
      case 507:
        return "tasks cannot store more (507)." + said;
    }
    return hop + " answered " + resp.status + (resp.statusText ? " " + resp.statusText : "") + "." + said;
  }

  function showError(err) {
    const box = $("error");
    box.textContent = err instanceof HopError ? err.message : "Something failed in this page: " + err;
    box.hidden = false;
    $("status").textContent = "";
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function say(text) {
    $("status").textContent = text;
  }

  // busy disables form's buttons while fn runs, so a double click sends one request.
  async function busy(form, fn) {
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await fn();
    } catch (err) {
      showError(err);
      if (err instanceof HopError && err.status === 401 && form.id === "task-form") signOut(false);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  function show(signedIn) {
    $("signed-out").hidden = signedIn;
    $("signed-in").hidden = !signedIn;
    $("who").textContent = sessionStorage.getItem(emailKey) || "";
  }

  function render(tasks) {
    const list = $("tasks");
    list.replaceChildren();
    for (const task of tasks) {
      const li = document.createElement("li");
      const title = document.createElement("h3");
      title.textContent = task.title;
      li.append(title);
      if (task.text) {
        const text = document.createElement("p");
        text.textContent = task.text;
        li.append(text);
      }
      list.append(li);
    }
    $("empty").hidden = tasks.length > 0;
  }

  async function loadTasks() {
    const token = sessionStorage.getItem(tokenKey);
    const data = await call("tasks", "GET", "/tasks");
    // A list that comes back after a log out, or another user's log in, is not this tab's now.
    if (sessionStorage.getItem(tokenKey) !== token) return;
    const tasks = Array.isArray(data.tasks) ? data.tasks : [];
    render(tasks);
    say(tasks.length === 1 ? "1 task." : tasks.length + " tasks.");
  }

  function signOut(announce) {
    sessionStorage.removeItem(tokenKey);
    sessionStorage.removeItem(emailKey);
    render([]);
    show(false);
    $("password").value = "";
    $("email").focus();
    if (announce) say("Logged out.");
  }

  $("account-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const action = ev.submitter && ev.submitter.value === "signup" ? "signup" : "login";
    const creds = { email: $("email").value.trim(), password: $("password").value };
    clearError();
    busy(ev.target, async () => {
      if (action === "signup") {
        await call("users", "POST", "/signup", creds);
        say("Account created for " + creds.email + ". Logging in…");
      }
      const data = await call("users", "POST", "/login", creds);
      if (!data.token) throw new HopError("users answered the login without a token.");
      sessionStorage.setItem(tokenKey, data.token);
      sessionStorage.setItem(emailKey, creds.email);
      $("password").value = "";
      show(true);
      say("Logged in as " + creds.email + ".");
      $("title").focus();
      await loadTasks();
    });
  });

  $("task-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearError();
    const task = { title: $("title").value, text: $("text").value };
    busy(ev.target, async () => {
      if (task.title.trim() === "") {
        $("title").focus();
        throw new HopError("A task needs a title.");
      }
      await call("tasks", "POST", "/tasks", task);
      $("title").value = "";
      $("text").value = "";
      await loadTasks();
      say("Task stored: " + (task.title.length > 80 ? task.title.slice(0, 80) + "…" : task.title));
      $("title").focus();
    });
  });

  $("refresh").addEventListener("click", () => {
    clearError();
    busy($("task-form"), loadTasks);
  });

  $("logout").addEventListener("click", () => {
    clearError();
    signOut(true);
  });

  $("mode").textContent = config.mode === "direct"
    ? "Direct mode: this page calls " + where("users") + " and " + where("tasks") + " from your browser (CORS)."
    : "Proxy mode: this page calls only its own server, which forwards /api/ to users and tasks.";

  if (sessionStorage.getItem(tokenKey)) {
    show(true);
    busy($("task-form"), loadTasks);
  } else {
    show(false);
  }
})();
