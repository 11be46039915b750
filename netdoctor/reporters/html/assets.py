"""Inline CSS and JS of the HTML report (kept in Python so the package needs no data files).

The script is progressive enhancement: the page is complete without it. Within each report root
(``<div class="netdoctor-report">``) it adds hover tooltips, severity filters, target tabs and
click-to-table on chart marks, and marks the root and the page as ready
(``data-nd-ready="1"``) with each chart's drawn mark count (``data-rendered``) so a headless
browser can check the page ran and laid out. The stylesheet is scoped to the root element
(:func:`scope`).
"""

from __future__ import annotations

#: Class of the report's root element; every rule of :data:`CSS` is scoped under it.
ROOT_CLASS = "netdoctor-report"


def scope(css: str, root: str) -> str:
    """Prefix every selector of ``css`` with ``root`` (``&`` stands for the root itself).

    ``main{...}`` becomes ``.netdoctor-report main{...}`` and ``&.hide-info .x`` becomes
    ``.netdoctor-report.hide-info .x``; the rules inside ``@media`` blocks are scoped the same
    way. The report therefore styles nothing outside its root element (no ``body``, ``*`` or
    bare ``table`` rule), so it can sit inside a notebook or a dashboard page.
    """
    out: list[str] = []
    i = 0
    while i < len(css):
        j = css.find("{", i)
        if j < 0:
            out.append(css[i:].strip())
            break
        depth, k = 1, j + 1
        while depth:
            depth += {"{": 1, "}": -1}.get(css[k], 0)
            k += 1
        head, body = css[i:j].strip(), css[j + 1:k - 1]
        if head.startswith("@"):
            out.append(f"{head}{{{scope(body, root)}}}")
        else:
            sels = (s.strip() for s in head.split(","))
            out.append(",".join(root + s[1:] if s.startswith("&") else f"{root} {s}" for s in sels)
                       + f"{{{body.strip()}}}")
        i = k
    return "\n".join(out)


_CSS_SOURCE = r"""
&{--bg:#fff;--fg:#1d2330;--muted:#5b6474;--line:#dde2ea;--card:#f6f8fb;--accent:#3b6fb6;
--err:#c62828;--warn:#b26a00;--info:#1f7a99;--ok:#2e7d32;--bar:#4c78a8;--low:#f58518;--high:#d62728;
--zero:#7b1fa2;--dead:#e45756;--sat:#f2a33a;--he:#2e9d4e;--xav:#9c5fb5;--grid:#e8ecf2;--val:#e07b00}
@media (prefers-color-scheme:dark){&{--bg:#14171c;--fg:#e3e7ee;--muted:#9aa3b2;--line:#2c323c;
--card:#1c2027;--accent:#7aa7e8;--grid:#262b33;--bar:#6d9bd1}}
&,*{box-sizing:border-box}
&{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;text-align:left}
main{max-width:1180px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--muted)}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px 12px;overflow:auto;margin:6px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:100px}
.card i{font-style:normal}
.card b{display:block;font-size:22px}.card span{color:var(--muted);font-size:12px}
.card.error b{color:var(--err)}.card.warning b{color:var(--warn)}.card.info b{color:var(--info)}
.card.passed b{color:var(--ok)}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hl td{background:rgba(255,200,0,.18)}
.layers td,.layers th{padding:2px 8px;font-size:12.5px}
.filters{margin:8px 0}
.filters button,.tabs button{font:inherit;background:var(--card);color:var(--fg);border:1px solid var(--line);
border-radius:14px;padding:2px 12px;margin-right:6px;cursor:pointer}
.filters button[aria-pressed=false]{opacity:.45;text-decoration:line-through}
.tabs button[aria-selected=true]{background:var(--accent);color:#fff;border-color:var(--accent)}
&.hide-error .finding.sev-error,&.hide-warning .finding.sev-warning,&.hide-info .finding.sev-info{display:none}
.finding{border:1px solid var(--line);border-left:4px solid var(--muted);border-radius:6px;padding:10px 14px;margin:10px 0;background:var(--bg)}
.finding.sev-error{border-left-color:var(--err)}.finding.sev-warning{border-left-color:var(--warn)}
.finding.sev-info{border-left-color:var(--info)}
.finding header{display:flex;flex-wrap:wrap;gap:8px;align-items:baseline}
.badge{font-size:11px;font-weight:700;text-transform:uppercase;padding:1px 7px;border-radius:10px;color:#fff;background:var(--muted)}
.badge.error{background:var(--err)}.badge.warning{background:var(--warn)}.badge.info{background:var(--info)}
.finding .code{font-weight:700}.finding .where{color:var(--muted)}
.finding p{margin:6px 0}.rec{font-weight:600}
dl.evidence{display:flex;flex-wrap:wrap;align-items:baseline;gap:2px 0;margin:6px 0;font-size:12.5px}
dl.evidence dt{color:var(--muted)}dl.evidence dt::after{content:":";margin-right:4px}
dl.evidence dd{margin:0 16px 0 0;font-variant-numeric:tabular-nums}
details.ev-long{font-size:12.5px;margin:2px 0}details.ev-long summary{cursor:pointer;color:var(--muted)}
details.ev-long summary span{color:var(--fg);font-variant-numeric:tabular-nums}
details.ev-long pre{max-height:240px}
.ev-text{font-size:12.5px;margin:4px 0}.ev-text>span{color:var(--muted)}.ev-text pre{max-height:400px;white-space:pre}
.verification{border:1px dashed var(--line);border-radius:6px;padding:6px 10px;margin-top:8px}
.verification .verdict{font-weight:700}.verification.good .verdict{color:var(--ok)}
.verification.bad .verdict{color:var(--err)}.verification table{width:auto}
.arrow{color:var(--muted)}
figure{margin:10px 0 18px;border:1px solid var(--line);border-radius:8px;padding:8px 10px;background:var(--bg)}
figcaption{font-weight:600;margin-bottom:2px}figcaption span{font-weight:400;color:var(--muted);font-size:12.5px}
.empty{color:var(--muted);font-style:italic}
svg.chart{width:100%;height:auto;display:block;font:11px system-ui,sans-serif}
svg.chart text{fill:var(--fg)}svg.chart .tick,svg.chart .xlabel{fill:var(--muted);font-size:10px}
svg.chart .axis-title{font-size:11px;fill:var(--muted)}svg.chart .note{fill:var(--muted);font-size:12px}
svg.chart .grid{stroke:var(--grid);stroke-width:1}
.bar.ok,.swatch.ok{fill:var(--bar)}.bar.low,.swatch.low{fill:var(--low)}.bar.high,.swatch.high{fill:var(--high)}
.bar.zero,.bar.nonfinite,.swatch.zero{fill:var(--zero)}.bar.far,.swatch.far{fill:var(--low)}
.bar.dead,.swatch.dead{fill:var(--dead)}.bar.saturated,.swatch.saturated{fill:var(--sat)}
.bar.over,.swatch.over{stroke:var(--fg);stroke-width:1.2}.swatch.over{fill:none}
.bar:hover,.point:hover{opacity:.7;cursor:pointer}
.ref line,path.ref{fill:none;stroke-width:1.6}
.ref.abs-floor line{stroke:var(--high)}.ref.abs-floor text{fill:var(--high)}
path.ratio-low{stroke:var(--low);stroke-dasharray:5 3}path.ratio-high{stroke:var(--high);stroke-dasharray:5 3}
.ref.limit line,.ref.unit line{stroke:var(--muted);stroke-dasharray:4 3}.ref.limit text,.ref.unit text{fill:var(--muted)}
path.he{stroke:var(--he);stroke-dasharray:6 3}path.xavier{stroke:var(--xav);stroke-dasharray:2 2}
polyline.line{fill:none;stroke-width:1.6}polyline.weight{stroke:var(--bar)}polyline.act{stroke:var(--dead)}
polyline.series{stroke:var(--accent)}polyline.series.raw{opacity:.28;stroke-width:1}
polyline.series.smooth{stroke-width:2}polyline.series.val{stroke:var(--val);stroke-width:1.8}
.val-point{fill:var(--val)}.val-point:hover{opacity:.7}
.curve-legend path{fill:none;stroke:var(--accent);stroke-width:2}.curve-legend.raw path{opacity:.28;stroke-width:1}
.curve-legend.val path{stroke:var(--val)}
path.unit-series{fill:none;stroke-width:1.2;opacity:.5}path.unit-series.dead{stroke:var(--dead)}
path.unit-series.saturated{stroke:var(--sat)}path.unit-series.flagged{stroke-width:2.4;opacity:1}
.curve-legend.unit path{opacity:.5;stroke-width:1.2}.curve-legend.unit.flagged path{opacity:1;stroke-width:2.4}
.curve-legend.unit.dead path{stroke:var(--dead)}.curve-legend.unit.saturated path{stroke:var(--sat)}svg.chart .curve-legend text{fill:var(--muted);font-size:10px}
.point.weight,.swatch.weight{fill:var(--bar)}.point.act,.swatch.act{fill:var(--dead)}
.point.zero,.point.nonfinite{fill:var(--zero)}
svg[data-chart$=curve] .point{fill:var(--accent);opacity:.0}svg[data-chart$=curve] .point:hover{opacity:1}
.nonfinite-mark{stroke:var(--zero);stroke-width:2}.nonfinite-band{fill:var(--zero);opacity:.13}
.nonfinite-label{fill:var(--zero)!important;font-size:10px}
.passed{color:var(--muted);font-size:12.5px}
.flag{fill:var(--high)}
.event line{stroke:var(--high);stroke-dasharray:3 3;stroke-width:1.2}svg.chart .event text{fill:var(--high);font-size:10px}
.event.sev-warning line{stroke:var(--warn)}svg.chart .event.sev-warning text{fill:var(--warn)}
.event.sev-info line{stroke:var(--info)}svg.chart .event.sev-info text{fill:var(--info)}
svg.chart .event-label{fill:var(--high);font-size:10px;white-space:pre}
svg.chart .event-label.sev-warning{fill:var(--warn)}svg.chart .event-label.sev-info{fill:var(--info)}
.nd-tip{position:fixed;pointer-events:none;background:var(--fg);color:var(--bg);padding:4px 8px;border-radius:4px;
font-size:12px;max-width:420px;display:none;z-index:10}
footer{margin-top:40px;color:var(--muted);font-size:12px}
"""
CSS = scope(_CSS_SOURCE, "." + ROOT_CLASS)

JS = r"""
(function(){
  var d=document, doc=d.documentElement, own=doc.hasAttribute('data-nd-ready');  /* own: the report's own page */
  window.addEventListener('error',function(e){if(own)doc.setAttribute('data-nd-error',String(e.message||e));});
  function titleOf(el){for(var c=el.firstChild;c;c=c.nextSibling){if(c.nodeName.toLowerCase()==='title')return c.textContent;}return null;}
  var total=0;
  d.querySelectorAll('.netdoctor-report:not([data-nd-ready="1"])').forEach(function(top){
    var tip=d.createElement('div'); tip.className='nd-tip'; top.appendChild(tip);
    top.addEventListener('mousemove',function(e){
      var el=e.target.closest?e.target.closest('svg.chart [data-value],svg.chart .flag,svg.chart .event'):null;
      var t=el&&titleOf(el);
      if(!t){tip.style.display='none';return;}
      tip.textContent=t; tip.style.display='block';
      tip.style.left=Math.min(e.clientX+12,window.innerWidth-430)+'px'; tip.style.top=(e.clientY+14)+'px';
    });
    top.querySelectorAll('.filters button').forEach(function(b){
      b.addEventListener('click',function(){
        var on=b.getAttribute('aria-pressed')!=='false';
        b.setAttribute('aria-pressed',on?'false':'true');
        top.classList.toggle('hide-'+b.dataset.sev,on);
      });
    });
    var tabs=top.querySelectorAll('.tabs button');
    function show(i){
      tabs.forEach(function(b){b.setAttribute('aria-selected',b.dataset.target===i?'true':'false');});
      top.querySelectorAll('section.target').forEach(function(s){s.hidden=s.dataset.target!==i;});
    }
    tabs.forEach(function(b){b.addEventListener('click',function(){show(b.dataset.target);});});
    if(tabs.length){show(tabs[0].dataset.target);}
    top.querySelectorAll('svg.chart [data-layer]').forEach(function(m){
      m.addEventListener('click',function(){
        var sec=m.closest('section.target'); if(!sec)return;
        var row=sec.querySelector('tr[data-layer="'+CSS.escape(m.getAttribute('data-layer'))+'"]'); if(!row)return;
        var det=row.closest('details'); if(det)det.open=true;
        sec.querySelectorAll('tr.hl').forEach(function(r){r.classList.remove('hl');});
        row.classList.add('hl'); row.scrollIntoView({block:'center'});
      });
    });
    var charts=top.querySelectorAll('svg.chart');
    charts.forEach(function(svg){
      var marks=svg.querySelectorAll('.bar,.point');
      svg.setAttribute('data-rendered',String(marks.length));
      var ok=true;
      if(marks.length){
        var first=marks[0];
        if(first.closest('section[hidden]')===null){var bb=first.getBBox(); ok=bb.width>0&&bb.height>0;}
      }
      svg.setAttribute('data-laid-out',ok?'1':'0');
    });
    total+=charts.length;
    top.setAttribute('data-nd-ready','1');
  });
  if(!own)return;  /* embedded (render(fragment=True)): the host page's root element is left alone */
  doc.setAttribute('data-nd-charts',String(total));
  doc.setAttribute('data-nd-ready-ms',String(Math.round(performance.now())));
  doc.setAttribute('data-nd-ready','1');
})();
"""
