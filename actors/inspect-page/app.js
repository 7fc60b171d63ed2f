// paddock's live view. Plain browser JavaScript, no framework, no network but its own
// WebSocket: the page must work offline and stay small. The server sends JSON arrays of
// messages (actors/inspect/feed.ts); this file keeps a model of them and redraws what
// changed once per animation frame, so a thousand sandboxes stay responsive.
'use strict';
(function () {
  const token = new URLSearchParams(location.search).get('token') || '';
  const SVG = 'http://www.w3.org/2000/svg';
  const SIGNALS = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM' };
  const KIND = { sandbox: 'sandbox', container: 'container', process: 'exec', restart: 'restart', health: 'health', network: 'network', pool: 'pool', group: 'group', supervisor: 'supervisor' };
  // Machines that watch one sandbox and hang beside it, named `<kind>:<sandbox>[/<container>]`.
  const BESIDE = /^(restart|health|network):/;
  const besides = (a) => a.machine === 'restart' || a.machine === 'health' || a.machine === 'network';
  const MAX_TIMELINE = 300;

  const model = { actors: new Map(), defs: new Map(), stats: new Map(), events: [], actions: false, selected: null };
  const views = new Map(); // actor id -> { node, row, children, parts }
  const dirty = new Set();
  // Actors to (re)place in the tree: new ones, and those whose place appeared since.
  const unplaced = new Set();
  let timelineReset = true;
  let timelineNew = [];
  let chartDirty = true;
  let countsDirty = true;
  let frame = 0;
  // Exposed for tests and the bench: render times (ms) and the last applied message time.
  const probe = (window.__paddock = { renders: [], lastMessageAt: 0, model });

  // ------------------------------------------------------------------ connection
  let ws = null;
  let retryMs = 500;
  const link = document.getElementById('link');
  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?token=' + encodeURIComponent(token);
    ws = new WebSocket(url);
    setLink('connecting', 'connecting…');
    ws.onopen = () => { retryMs = 500; setLink('open', 'live'); };
    ws.onmessage = (m) => {
      let batch;
      try { batch = JSON.parse(m.data); } catch (e) { return; }
      if (!Array.isArray(batch)) return;
      for (const msg of batch) apply(msg);
      probe.lastMessageAt = performance.now();
      schedule();
    };
    ws.onclose = () => {
      setLink('closed', 'disconnected, retrying');
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }
  function setLink(cls, text) { link.className = 'link ' + cls; link.textContent = text; }

  function send(action, a) {
    if (!ws || ws.readyState !== 1) return;
    ws.send(JSON.stringify({ t: 'action', ref: String(Date.now()), action: action, sandboxId: a.name, token: token }));
  }

  // ------------------------------------------------------------------ model
  function apply(m) {
    switch (m.t) {
      case 'hello':
        model.actions = m.actions;
        const mode = document.getElementById('mode');
        mode.textContent = m.actions ? 'actions on' : 'read-only';
        mode.className = 'badge' + (m.actions ? ' actions' : '');
        break;
      case 'reset':
        model.actors.clear(); model.stats.clear(); model.events.length = 0;
        for (const v of views.values()) v.node.remove();
        views.clear(); unplaced.clear(); sandboxByName.clear(); timelineReset = true; timelineNew = []; chartDirty = true;
        break;
      case 'def':
        model.defs.set(m.def.machine, m.def);
        break;
      case 'actor': {
        const a = { id: m.id, parent: m.parent, name: m.name, machine: m.machine, value: m.value, status: m.status, ctx: m.ctx };
        model.actors.set(a.id, a);
        unplaced.add(a.id);
        if (a.machine === 'sandbox' && !a.parent) {
          sandboxByName.set(a.name, a.id);
          // Its restart and health machines may have come first; they hang under it.
          for (const b of model.actors.values()) if (besides(b) && b.name.replace(BESIDE, '').split('/')[0] === a.name) unplaced.add(b.id);
        }
        if (a.status !== 'active') drop(a.id);
        break;
      }
      case 'state': {
        const a = model.actors.get(m.id);
        if (!a) break;
        a.value = m.value; a.status = m.status; a.ctx = m.ctx;
        if (a.machine === 'sandbox') countsDirty = true;
        if (a.status !== 'active') drop(a.id); else dirty.add(a.id);
        if (model.selected === a.id) chartDirty = true;
        break;
      }
      case 'event':
        addEvent({ at: m.at, e: m.e });
        break;
      case 'stats': {
        let h = model.stats.get(m.sandboxId);
        if (!h) model.stats.set(m.sandboxId, (h = []));
        h.push(m);
        if (h.length > 60) h.shift();
        const sid = sandboxByName.get(m.sandboxId);
        if (sid !== undefined) dirty.add(sid);
        break;
      }
      case 'result':
        if (!m.ok) addEvent({ at: Date.now(), e: { type: 'error', error: { code: m.code, message: m.message } } });
        break;
      case 'error':
        addEvent({ at: Date.now(), e: { type: 'error', error: { code: 'EINSPECTOR', message: m.message } } });
        break;
    }
  }

  const sandboxByName = new Map(); // a root sandbox's name -> its newest actor id

  function addEvent(entry) {
    model.events.push(entry);
    timelineNew.push(entry);
    if (model.events.length > MAX_TIMELINE) model.events.shift();
  }

  // A finished actor (a destroyed sandbox, a removed container) leaves the tree with its children.
  function drop(id) {
    for (const a of model.actors.values()) if (a.parent === id) drop(a.id);
    const gone = model.actors.get(id);
    model.actors.delete(id);
    unplaced.delete(id);
    if (gone && sandboxByName.get(gone.name) === id) sandboxByName.delete(gone.name);
    const v = views.get(id);
    if (v) { v.node.remove(); views.delete(id); }
    if (model.selected === id) { model.selected = null; chartDirty = true; }
  }

  // ------------------------------------------------------------------ rendering
  function schedule() { if (!frame) frame = requestAnimationFrame(render); }

  function render() {
    frame = 0;
    const t0 = performance.now();
    if (unplaced.size) layoutTree();
    for (const id of dirty) updateRow(id);
    dirty.clear();
    if (timelineReset || timelineNew.length) renderTimeline();
    if (chartDirty) renderChart();
    if (countsDirty) renderCounts();
    probe.renders.push(performance.now() - t0);
    if (probe.renders.length > 200) probe.renders.shift();
  }

  function stateName(v) {
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object') { const k = Object.keys(v)[0]; return k === undefined ? '?' : k + '.' + stateName(v[k]); }
    return '?';
  }
  function topState(v) { return stateName(v).split('.')[0]; }

  function exitText(exit) {
    if (!exit) return '';
    if (exit.signal !== null && exit.signal !== undefined) return 'killed by ' + (SIGNALS[exit.signal] || 'signal ' + exit.signal);
    if (exit.exitCode !== null && exit.exitCode !== undefined) return 'exit ' + exit.exitCode;
    return 'status lost';
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Where an actor hangs: children under their parent; restart and health machines
  // beside the sandbox they watch; pools, groups and the supervisor in their sections.
  function placeOf(a) {
    // The sandbox machine holds its exec'd processes; they are shown under their container.
    if (a.machine === 'process' && a.parent && a.ctx && a.ctx.containerId) {
      for (const b of model.actors.values()) if (b.parent === a.parent && b.machine === 'container' && b.name === a.ctx.containerId) return { parent: b.id };
    }
    if (a.parent && model.actors.has(a.parent)) return { parent: a.parent };
    if (besides(a)) {
      const target = sandboxByName.get(a.name.replace(BESIDE, '').split('/')[0]);
      return target !== undefined && model.actors.has(target) ? { parent: target } : { section: 'supervision' };
    }
    if (a.machine === 'sandbox') return { section: 'sandboxes' };
    if (a.machine === 'pool') return { section: 'pools' };
    if (a.machine === 'group') return { section: 'groups' };
    return { section: 'engine' };
  }

  const tree = document.getElementById('tree');
  const sections = {};
  for (const [key, title] of [['engine', 'Engine'], ['sandboxes', 'Sandboxes'], ['pools', 'Pools'], ['groups', 'Supervision trees'], ['supervision', 'Restart policies']]) {
    const s = el('div', 'section');
    s.dataset.section = key;
    s.append(el('h3', '', title), el('div', 'children-root'));
    sections[key] = s;
  }

  function viewOf(a) {
    let v = views.get(a.id);
    if (v) return v;
    const node = el('div', 'node');
    const row = el('div', 'row');
    row.setAttribute('role', 'treeitem');
    const parts = {
      kind: el('span', 'kind', KIND[a.machine] || a.machine),
      name: el('span', 'name', besides(a) ? a.machine : a.name),
      state: el('span', 'state'),
      detail: el('span', 'detail'),
      countdown: el('span', 'countdown'),
      spark: null,
      usage: null,
      actions: null,
    };
    row.append(parts.kind, parts.name, parts.state, parts.detail, parts.countdown);
    if (a.machine === 'sandbox') {
      parts.spark = document.createElementNS(SVG, 'svg');
      parts.spark.setAttribute('class', 'spark'); parts.spark.setAttribute('width', '80'); parts.spark.setAttribute('height', '16');
      parts.usage = el('span', 'usage');
      row.append(parts.spark, parts.usage);
      if (model.actions) {
        parts.actions = el('span', 'actions');
        for (const act of ['kill', 'pause', 'resume']) {
          const b = el('button', '', act);
          b.dataset.action = act;
          b.onclick = (ev) => { ev.stopPropagation(); send(act, a); };
          parts.actions.append(b);
        }
        row.append(parts.actions);
      }
    }
    row.onclick = () => { model.selected = a.id; chartDirty = true; for (const o of views.values()) o.row.classList.toggle('selected', o === v); schedule(); };
    const children = el('div', 'children');
    node.append(row, children);
    v = { node, row, children, parts };
    views.set(a.id, v);
    return v;
  }

  function layoutTree() {
    for (const sec of Object.values(sections)) if (!sec.parentNode) tree.append(sec);
    // Parents first (the model keeps creation order), so a child finds its parent's view.
    for (const a of model.actors.values()) {
      if (!unplaced.has(a.id)) continue;
      const v = viewOf(a);
      const place = placeOf(a);
      const host = place.parent ? viewOf(model.actors.get(place.parent)).children : sections[place.section].lastChild;
      if (v.node.parentNode !== host) host.append(v.node);
      updateRow(a.id);
    }
    unplaced.clear();
    for (const sec of Object.values(sections)) sec.style.display = sec.lastChild.childElementCount ? '' : 'none';
    if (!model.selected) {
      const first = sandboxByName.values().next();
      if (!first.done) { model.selected = first.value; chartDirty = true; views.get(first.value)?.row.classList.add('selected'); }
    }
    countsDirty = true;
  }

  function updateRow(id) {
    const a = model.actors.get(id);
    const v = views.get(id);
    if (!a || !v) return;
    const st = topState(a.value);
    const p = v.parts;
    p.state.textContent = stateName(a.value);
    p.state.className = 'state ' + st;
    v.row.dataset.name = a.name; v.row.dataset.machine = a.machine; v.row.dataset.state = st;
    const ctx = a.ctx || {};
    let detail = '';
    if (ctx.exit && (st === 'stopped' || st === 'exited' || st === 'failed')) detail = exitText(ctx.exit);
    else if (ctx.error && ctx.error.message) detail = (ctx.error.code ? ctx.error.code + ': ' : '') + ctx.error.message;
    else if (a.machine === 'process' && ctx.pid) detail = 'pid ' + ctx.pid;
    else if (a.machine === 'container' && ctx.pid) detail = 'pid ' + ctx.pid;
    else if (a.machine === 'restart' && ctx.attempt) detail = 'attempt ' + ctx.attempt;
    else if (a.machine === 'restart' && ctx.reason) detail = ctx.reason;
    p.detail.textContent = detail;
    v.row.dataset.exit = ctx.exit ? exitText(ctx.exit) : '';
    // Usage is shown while the sandbox's processes exist; a stopped one has none.
    if (p.spark) {
      if (st === 'running' || st === 'paused') drawSpark(a, p);
      else { p.spark.replaceChildren(); p.usage.textContent = ''; }
    }
  }

  function drawSpark(a, p) {
    const h = model.stats.get(a.name) || [];
    while (p.spark.firstChild) p.spark.firstChild.remove();
    if (h.length < 1) { p.usage.textContent = ''; return; }
    const mem = h.map((s) => s.mem || 0);
    const max = Math.max(1, ...mem);
    const pts = mem.map((m, i) => (h.length === 1 ? 80 : (i * 80) / (h.length - 1)).toFixed(1) + ',' + (15 - (m / max) * 14).toFixed(1)).join(' ');
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', pts); line.setAttribute('fill', 'none'); line.setAttribute('stroke', '#3b6fd8'); line.setAttribute('stroke-width', '1.5');
    p.spark.append(line);
    const last = h[h.length - 1];
    const prev = h[h.length - 2];
    let cpu = '';
    if (prev && last.cpu !== null && prev.cpu !== null && last.at > prev.at) cpu = ' · ' + (((last.cpu - prev.cpu) / ((last.at - prev.at) * 1e6)) * 100).toFixed(1) + '% cpu';
    p.usage.textContent = (last.mem !== null ? (last.mem / 1048576).toFixed(1) + ' MiB' : '') + cpu;
  }

  // Restart countdowns: from the restart machine's deadline, or the engine's restart.scheduled.
  function tickCountdowns() {
    const now = Date.now();
    for (const a of model.actors.values()) {
      if (a.machine !== 'restart') continue;
      const v = views.get(a.id);
      if (!v) continue;
      const left = topState(a.value) === 'backoff' && a.ctx && a.ctx.deadline ? a.ctx.deadline - now : -1;
      v.parts.countdown.textContent = left > 0 ? 'restart in ' + (left / 1000).toFixed(1) + ' s' : '';
    }
    for (const li of timelineEl.querySelectorAll('li[data-until]')) {
      const left = Number(li.dataset.until) - now;
      li.querySelector('.left').textContent = left > 0 ? ' (in ' + (left / 1000).toFixed(1) + ' s)' : '';
    }
  }
  setInterval(tickCountdowns, 100);

  // ------------------------------------------------------------------ timeline
  const timelineEl = document.getElementById('timeline');
  function describe(e) {
    const who = e.sandboxId ? e.sandboxId + (e.containerId ? '/' + e.containerId : '') : '';
    switch (e.type) {
      case 'state': return ['state', (e.pid ? who + ' pid ' + e.pid : who) + ' → ' + e.status];
      case 'exit': return ['exit', (e.kind === 'exec' ? who + ' pid ' + e.pid : who) + ' ' + (e.lost ? 'lost its status' : exitText(e.exit))];
      case 'restart.scheduled': return ['restart', 'restart #' + e.attempt + ' of ' + who + ' after ' + exitText(e.exit) + ', backoff ' + e.delayMs + ' ms'];
      case 'restart.launched': return ['restart', who + ' relaunched (attempt ' + e.attempt + ')'];
      case 'restart.gaveUp': return ['restart', who + ': gave up, ' + e.reason];
      case 'restart.stopped': return ['restart', who + ': no restart, ' + e.reason];
      case 'error': return ['error', (who ? who + ': ' : '') + (e.error ? (e.error.code ? e.error.code + ' ' : '') + e.error.message : 'error')];
      case 'oom': return ['oom', who + ' hit its memory limit (' + e.oomKills + ' kills)'];
      case 'unhealthy': return ['unhealthy', who + ' stopped answering (' + e.reason + ')'];
      default: return [e.type.split('.')[0], e.type + ' ' + (e.pool || who || '')];
    }
  }
  function timelineItem(entry) {
    const { at, e } = entry;
    const [kind, text] = describe(e);
    const li = el('li', 'k-' + kind);
    li.dataset.kind = e.type;
    const d = new Date(at);
    li.append(el('time', '', d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0')), el('span', 'tag', kind), el('span', 'text', text));
    if (e.type === 'restart.scheduled') { li.dataset.until = String(at + e.delayMs); li.append(el('span', 'left countdown')); }
    return li;
  }

  // Newest first; only what arrived since the last frame is drawn.
  function renderTimeline() {
    if (timelineReset) {
      timelineReset = false;
      timelineNew = [];
      timelineEl.replaceChildren(...model.events.slice().reverse().map(timelineItem));
    } else {
      const frag = document.createDocumentFragment();
      for (const entry of timelineNew.slice(-MAX_TIMELINE).reverse()) frag.append(timelineItem(entry));
      timelineNew = [];
      timelineEl.prepend(frag);
      while (timelineEl.childElementCount > MAX_TIMELINE) timelineEl.lastChild.remove();
    }
    tickCountdowns();
  }

  // ------------------------------------------------------------------ statechart
  const chartEl = document.getElementById('chart');
  function renderChart() {
    chartDirty = false;
    const a = model.selected ? model.actors.get(model.selected) : null;
    document.getElementById('chart-title').textContent = a ? '— ' + (KIND[a.machine] || a.machine) + ' ' + a.name : '';
    const any = document.getElementById('chart-any');
    if (!a || !model.defs.has(a.machine)) { chartEl.replaceChildren(el('p', 'hint', 'Select an actor to see its machine.')); any.textContent = ''; return; }
    const def = model.defs.get(a.machine);
    const current = topState(a.value);
    // Columns by distance from the initial state (breadth first); the rest at the end.
    const col = new Map();
    const order = [];
    if (def.initial) { col.set(def.initial, 0); order.push(def.initial); }
    for (let i = 0; i < order.length; i++) {
      for (const e of def.edges) if (e.from === order[i] && !col.has(e.to)) { col.set(e.to, col.get(order[i]) + 1); order.push(e.to); }
    }
    let maxCol = Math.max(0, ...col.values());
    for (const s of def.states) if (!col.has(s.key)) col.set(s.key, ++maxCol);
    const rows = new Map();
    const pos = new Map();
    const W = 112, H = 28, GX = 210, GY = 64;
    for (const s of def.states) {
      const c = col.get(s.key);
      const r = rows.get(c) || 0;
      rows.set(c, r + 1);
      pos.set(s.key, { x: 12 + c * GX, y: 14 + r * GY });
    }
    const width = 12 + (maxCol + 1) * GX;
    const height = 28 + Math.max(...rows.values()) * GY;
    const svg = document.createElementNS(SVG, 'svg');
    // Scaled to the pane: the whole machine at a glance, however many columns it takes.
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', '100%');
    svg.style.maxHeight = Math.max(height, 120) + 'px';
    const defs = document.createElementNS(SVG, 'defs');
    defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#b4bccb"/></marker>';
    svg.append(defs);
    // An event that leads to one state from many (destroy → destroying) is listed, not drawn.
    const fanIn = new Map();
    for (const e of def.edges) if (e.from !== '*') fanIn.set(e.event + '>' + e.to, (fanIn.get(e.event + '>' + e.to) || 0) + 1);
    const pairs = new Map();
    const listed = [];
    for (const e of def.edges) {
      if (e.from === '*' || !pos.has(e.from) || !pos.has(e.to)) continue;
      if (fanIn.get(e.event + '>' + e.to) >= 4) { if (!listed.includes(e.event + ' → ' + e.to)) listed.push(e.event + ' → ' + e.to); continue; }
      const k = e.from + '>' + e.to;
      if (!pairs.has(k)) pairs.set(k, []);
      if (!pairs.get(k).includes(e.event)) pairs.get(k).push(e.event);
    }
    for (const [k, events] of pairs) {
      const [from, to] = k.split('>');
      const p = pos.get(from), q = pos.get(to);
      const forward = q.x > p.x;
      const g = document.createElementNS(SVG, 'g');
      g.setAttribute('class', 'ed' + (forward ? '' : ' back'));
      const path = document.createElementNS(SVG, 'path');
      let d, lx, ly;
      if (forward) {
        const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x, y2 = q.y + H / 2;
        d = 'M' + x1 + ',' + y1 + ' C' + (x1 + 30) + ',' + y1 + ' ' + (x2 - 30) + ',' + y2 + ' ' + x2 + ',' + y2;
        lx = (x1 + x2) / 2; ly = (y1 + y2) / 2 - 4;
      } else {
        // Back and same-column edges loop below the boxes, unlabelled (hover shows the events).
        const x1 = p.x + W / 2 + 10, y1 = p.y + H, x2 = q.x + W / 2 - 10, y2 = q.y + H;
        const drop = Math.max(y1, y2) + 18 + Math.abs(p.x - q.x) / 10;
        d = 'M' + x1 + ',' + y1 + ' C' + x1 + ',' + drop + ' ' + x2 + ',' + drop + ' ' + x2 + ',' + y2;
      }
      path.setAttribute('d', d);
      path.setAttribute('marker-end', 'url(#arrow)');
      const title = document.createElementNS(SVG, 'title');
      title.textContent = from + ' → ' + to + ': ' + events.join(', ');
      g.append(title, path);
      if (forward) {
        const label = document.createElementNS(SVG, 'text');
        label.setAttribute('x', String(lx)); label.setAttribute('y', String(ly));
        label.textContent = events[0] + (events.length > 1 ? ' +' + (events.length - 1) : '');
        g.append(label);
      }
      svg.append(g);
    }
    for (const s of def.states) {
      const p = pos.get(s.key);
      const g = document.createElementNS(SVG, 'g');
      g.setAttribute('class', 'st' + (s.final ? ' final' : '') + (s.key === current ? ' current ' + current : ''));
      g.dataset.state = s.key;
      const r = document.createElementNS(SVG, 'rect');
      r.setAttribute('x', String(p.x)); r.setAttribute('y', String(p.y)); r.setAttribute('width', String(W)); r.setAttribute('height', String(H));
      const t = document.createElementNS(SVG, 'text');
      t.setAttribute('x', String(p.x + W / 2)); t.setAttribute('y', String(p.y + H / 2 + 1));
      t.textContent = s.key;
      if (s.description) { const title = document.createElementNS(SVG, 'title'); title.textContent = s.description; g.append(title); }
      g.append(r, t);
      svg.append(g);
    }
    chartEl.replaceChildren(svg);
    const anyEdges = def.edges.filter((e) => e.from === '*').map((e) => e.event + ' → ' + e.to);
    const notes = [];
    if (anyEdges.length) notes.push('In any state: ' + anyEdges.join(' · '));
    if (listed.length) notes.push('From most states: ' + listed.join(' · '));
    any.textContent = notes.join('   ');
  }

  function renderCounts() {
    countsDirty = false;
    const n = { sandboxes: 0, running: 0, paused: 0, stopped: 0, failed: 0 };
    for (const a of model.actors.values()) {
      if (a.machine !== 'sandbox') continue;
      n.sandboxes++;
      const s = topState(a.value);
      if (s in n) n[s]++;
    }
    const c = document.getElementById('counts');
    c.replaceChildren(...Object.entries(n).map(([k, v]) => { const s = el('span'); s.append(el('b', '', String(v)), ' ' + k); s.dataset.count = k; return s; }));
  }

  connect();
})();
