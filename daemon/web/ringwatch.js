// ringwatchd's status page. The fleet table is rendered by the server and
// refreshed here by swapping in a fresh copy; a cluster's page is drawn from
// /v1/clusters/{name} (the report) and /v1/clusters/{name}/history.
(function () {
  'use strict';
  const body = document.body;
  const refreshMs = Math.max(1, Number(body.dataset.refresh) || 5) * 1000;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('data-')) node.setAttribute(key, value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const svgNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const node = document.createElementNS(svgNS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }
  function replace(id, node) {
    const old = document.getElementById(id);
    node.id = id;
    old.replaceWith(node);
  }
  function stamp(text) {
    document.getElementById('updated').textContent = text;
  }
  async function getJSON(url) {
    const response = await fetch(url, {cache: 'no-store'});
    if (response.status === 503) return null;
    if (!response.ok) throw new Error(url + ': HTTP ' + response.status);
    return response.json();
  }
  function every(task) {
    const run = () => task()
      .catch((error) => stamp('update failed: ' + error.message))
      .finally(() => setTimeout(run, refreshMs));
    run();
  }
  function now() {
    return new Date().toISOString().slice(11, 19) + ' UTC';
  }

  // ----- the fleet -----
  async function refreshFleet() {
    const response = await fetch('/', {cache: 'no-store'});
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const page = new DOMParser().parseFromString(await response.text(), 'text/html');
    const fresh = page.getElementById('fleet');
    if (fresh) document.getElementById('fleet').replaceWith(document.importNode(fresh, true));
    stamp('updated ' + now());
  }

  // ----- one cluster -----
  const state = {selected: null, report: null};

  function subjectMatches(subject, proxy, backend) {
    if (subject.proxy && subject.proxy !== proxy) return false;
    if (subject.backend && subject.backend !== backend) return false;
    return Boolean(subject.proxy || subject.backend);
  }

  function evidenceList(evidence) {
    const list = el('dl');
    for (const [key, value] of Object.entries(evidence || {})) {
      list.append(el('dt', null, key), el('dd', null, Array.isArray(value) ? value.join('; ') : value));
    }
    return list;
  }

  function findingNode(finding) {
    const subject = Object.entries(finding.subject || {}).map(([k, v]) => k + ' ' + v).join(', ');
    return el('div', {class: 'finding'},
      el('span', {class: 'sev sev-' + finding.severity}, finding.severity),
      el('span', {class: 'code'}, finding.check + '/' + finding.code), ' ',
      subject ? el('span', {class: 'muted'}, '(' + subject + ') ') : null,
      el('div', null, finding.summary),
      el('details', null, el('summary', {class: 'muted'}, 'evidence'), evidenceList(finding.evidence)));
  }

  function linkEvidence(report, link) {
    const lines = [
      'canary: ' + (link.canary || 'not run'),
      'proxy stats: ' + (link.proxy_side || 'not run'),
      'backend peers: ' + (link.backend_side || 'not run'),
    ];
    for (const finding of report.findings) {
      if (finding.severity !== 'info' && subjectMatches(finding.subject, link.proxy, link.backend)) {
        lines.push(finding.check + '/' + finding.code + ': ' + finding.summary);
      }
    }
    return lines;
  }

  function showCell(link) {
    state.selected = link ? link.proxy + '/' + link.backend : null;
    const detail = el('div', {class: 'detail'});
    if (link && state.report) {
      detail.append(el('strong', null, link.proxy + ' \u2192 ' + link.backend + ': ' + link.state));
      const related = state.report.findings.filter((f) => f.severity !== 'info' &&
        subjectMatches(f.subject, link.proxy, link.backend));
      detail.append(el('ul', null, linkEvidence(state.report, link).slice(0, 3).map((l) => el('li', null, l))));
      related.forEach((f) => detail.append(findingNode(f)));
    }
    replace('cell-detail', detail);
    document.querySelectorAll('td.cell').forEach((cell) => cell.classList.toggle('selected',
      cell.dataset.proxy + '/' + cell.dataset.backend === state.selected));
  }

  // C canary, P proxy stats, B backend peers: plain when fine, struck out when
  // not, dimmed when unknown.
  function marks(link) {
    const mark = (letter, value, good, what) => value ? el('span', {
      class: value === good ? 'good' : (value === 'unknown' ? 'unsure' : 'off'),
      title: what + ': ' + value,
    }, letter) : null;
    return [mark('C', link.canary, 'routed', 'canary'),
      mark('P', link.proxy_side, 'connected', 'proxy stats'),
      mark('B', link.backend_side, 'connected', 'backend peers')];
  }

  function renderMatrix(report) {
    const links = report.links || [];
    if (links.length === 0) {
      return el('p', {class: 'muted'}, 'The matrix needs the canary or connections check.');
    }
    const proxies = [...new Set(links.map((l) => l.proxy))];
    const backends = [...new Set(links.map((l) => l.backend))];
    const byKey = new Map(links.map((l) => [l.proxy + '/' + l.backend, l]));
    const head = el('tr', null, el('th', {class: 'rowhead'}, 'backend \\ proxy'), proxies.map((p) => el('th', null, p)));
    const rows = backends.map((b) => el('tr', null, el('th', {class: 'rowhead'}, b), proxies.map((p) => {
      const link = byKey.get(p + '/' + b);
      if (!link) return el('td', {class: 'cell cell-unknown'}, '?');
      return el('td', {
        class: 'cell cell-' + link.state + (state.selected === p + '/' + b ? ' selected' : ''),
        'data-proxy': p, 'data-backend': b, 'data-state': link.state,
        title: linkEvidence(report, link).join('\n'),
        onclick: () => showCell(link),
      }, marks(link));
    })));
    return el('div', {class: 'scroll'}, el('table', {class: 'matrix'}, el('thead', null, head), el('tbody', null, rows)));
  }

  function renderDns(report) {
    const answers = report.dns_answers || [];
    if (answers.length === 0) return el('p', {class: 'muted'}, 'The DNS check did not run.');
    const vantages = [...new Set(answers.map((a) => a.vantage))];
    const names = [...new Set(answers.map((a) => a.backend))];
    const byKey = new Map(answers.map((a) => [a.backend + '/' + a.vantage, a]));
    return el('div', {class: 'scroll'}, el('table', {class: 'dns'},
      el('thead', null, el('tr', null, el('th', null, 'name'), vantages.map((v) => el('th', null, v)))),
      el('tbody', null, names.map((b) => {
        const first = byKey.get(b + '/' + vantages[0]) || {};
        return el('tr', null, el('td', null, el('strong', null, b), ' ', el('span', {class: 'muted'}, first.node || '')),
          vantages.map((v) => {
            const a = byKey.get(b + '/' + v);
            if (!a) return el('td', {class: 'muted'}, '\u2013');
            return el('td', {class: 'dns-' + a.verdict, 'data-backend': b, 'data-vantage': v, 'data-verdict': a.verdict},
              a.addresses.length ? a.addresses.join(', ') : a.verdict.replace('_', ' '),
              a.verdict === 'expected' ? '' : ' (' + a.verdict.replace('_', ' ') + ')');
          }));
      }))));
  }

  // The summary beside its status badge, without the status it starts with.
  function withoutStatus(report) {
    const prefix = report.status + ': ';
    return report.summary.startsWith(prefix) ? report.summary.slice(prefix.length) : report.summary;
  }

  function renderDiagnosis(report) {
    const ok = report.status === 'OK';
    const section = el('section', {class: 'diagnosis' + (ok ? ' ok' : '')}, el('h2', null, 'Diagnosis'));
    if (report.diagnoses.length === 0) {
      section.append(el('p', {class: 'summary'}, report.summary));
    } else {
      section.append(el('ul', null, report.diagnoses.map((d) =>
        el('li', null, el('span', {class: 'sev sev-' + d.severity}, d.severity), d.summary))));
    }
    return section;
  }

  function chart(title, points, options) {
    const width = 300, height = 80, n = Math.max(points.length, 2);
    const x = (i) => (i * width) / (n - 1);
    const box = svg('svg', {viewBox: '0 0 ' + width + ' ' + height, preserveAspectRatio: 'none', role: 'img', 'aria-label': title});
    if (options.bars) {
      const w = width / Math.max(points.length, 1);
      points.forEach((p, i) => {
        const bar = svg('rect', {x: i * w, y: 0, width: Math.max(w - 1, 1), height: height, fill: options.bars[p.value] || '#a0aec0'});
        bar.append(svg('title'));
        bar.firstChild.textContent = p.label;
        box.append(bar);
      });
    } else {
      const values = points.map((p) => p.value).filter((v) => v !== null);
      const max = options.max !== undefined ? options.max : Math.max(...values, 1e-9) * 1.15;
      const min = options.min !== undefined ? options.min : 0;
      const y = (v) => height - 4 - ((v - min) / (max - min || 1)) * (height - 8);
      let path = '';
      points.forEach((p, i) => {
        if (p.value === null) return;
        path += (path ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p.value).toFixed(1);
      });
      box.append(svg('path', {d: path, fill: 'none', stroke: '#2b6cb0', 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke'}));
    }
    const last = points.length ? points[points.length - 1] : null;
    return el('div', {class: 'chart'}, el('h3', null, title + (last && last.text ? ': ' + last.text : '')), box);
  }

  function renderCharts(history) {
    const rounds = (history && history.rounds) || [];
    const colours = {OK: '#1f8a4c', WARNING: '#b7791f', CRITICAL: '#c53030', UNKNOWN: '#6b46c1'};
    return el('div', {class: 'charts'},
      chart('Status, last ' + rounds.length + ' rounds', rounds.map((r) => ({value: r.status, label: r.started_at + ' ' + r.status, text: ''})), {bars: colours}),
      chart('Consistency ratio', rounds.map((r) => ({value: r.consistency_ratio, text: r.consistency_ratio === null ? '' : r.consistency_ratio.toFixed(3)})), {min: 0, max: 1}),
      chart('Round time (ms)', rounds.map((r) => ({value: r.duration_ms, text: r.duration_ms.toFixed(1)})), {}));
  }

  function renderFindings(report) {
    const shown = report.findings.filter((f) => f.severity !== 'info');
    const info = report.findings.filter((f) => f.severity === 'info');
    return el('div', null,
      shown.length ? shown.map(findingNode) : el('p', {class: 'muted'}, 'No findings above info.'),
      info.length ? el('details', null, el('summary', {class: 'muted'}, info.length + ' info finding(s)'), info.map(findingNode)) : null);
  }

  async function refreshCluster() {
    const name = body.dataset.cluster;
    const base = '/v1/clusters/' + encodeURIComponent(name);
    const [report, history] = await Promise.all([getJSON(base), getJSON(base + '/history')]);
    replace('charts', renderCharts(history));
    if (!report) {
      replace('headline', el('p', {class: 'summary'}, el('span', {class: 'badge st-PENDING'}, 'PENDING'), ' waiting for the first round'));
      stamp('updated ' + now());
      return;
    }
    state.report = report;
    replace('headline', el('p', {class: 'summary'}, el('span', {class: 'badge st-' + report.status}, report.status), ' ',
      withoutStatus(report), el('span', {class: 'muted'}, ' \u00b7 round at ' + report.started_at + ', ' + report.duration_ms.toFixed(1) + ' ms')));
    replace('diagnosis', renderDiagnosis(report));
    replace('matrix', renderMatrix(report));
    replace('dns', renderDns(report));
    replace('findings', renderFindings(report));
    const selected = state.selected && (report.links || []).find((l) => l.proxy + '/' + l.backend === state.selected);
    showCell(selected || null);
    stamp('round ' + report.started_at + ' \u00b7 updated ' + now());
  }

  if (body.dataset.page === 'cluster') every(refreshCluster);
  else if (body.dataset.page === 'fleet') setTimeout(() => every(refreshFleet), refreshMs);
})();
