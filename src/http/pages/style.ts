/** Shared stylesheet of the manager's and the agent's status pages; phone width first. */
export const PAGE_CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2430;background:#f6f7f9}
a{color:#1d5fb8}
header{background:#1d3557;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.3em 1em;align-items:center}
header a{color:#fff;text-decoration:none}header a:hover{text-decoration:underline}
header .brand{font-weight:700;margin-right:.5em}
header .me{margin-left:auto;font-size:.9em}
header .live.badge{color:#1f2430}
header form{display:inline;margin:0}
header button{background:none;border:1px solid #fff8;color:#fff;border-radius:3px;padding:.1em .5em;cursor:pointer}
main{padding:1em;max-width:1200px}
h1{font-size:1.4em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1.4em 0 .5em}
.banner{background:#ffe8a3;padding:.5em 1em;border-bottom:1px solid #e0c060}
.error{background:#fde2e1;padding:.5em 1em;border-radius:4px}
.muted{color:#667}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:.8em 1em;flex:1 1 280px;min-width:0}
.card h2{margin-top:0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;background:#fff;border:1px solid #dde;border-radius:6px}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e6e8ee;padding:.35em .6em;text-align:left;vertical-align:top;white-space:nowrap}
td.wrap{white-space:pre-wrap;word-break:break-word;min-width:16em}
th{background:#f0f2f6;font-weight:600}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}
dl.kv dt{color:#556}dl.kv dd{margin:0;word-break:break-word}
code,pre{font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#11161f;color:#e4e8ef;padding:.7em;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;max-height:32em;overflow-y:auto;margin:0}
.badge{display:inline-block;padding:0 .45em;border-radius:9px;font-size:.9em;background:#e4e7ee}
.s-running,.s-ready,.s-complete,.s-completed,.s-connected,.s-succeeded{background:#d4f1dc}
.s-pending,.s-dispatched,.s-draining,.s-pre,.s-post{background:#fff0c2}
.s-failed,.s-lost,.s-dead,.s-killed,.s-expired,.s-disconnected{background:#fbd5d3}
.bar-row{display:flex;flex-wrap:wrap;align-items:center;gap:.2em .6em;margin:.3em 0}
.bar-label{width:5em}
.bar{flex:1 1 10em;height:.9em;background:#e6e8ee;border-radius:4px;overflow:hidden;min-width:8em}
.bar .fill{display:block;height:100%;background:#3a7bd5}
.bar.warm .fill{background:#e0a030}.bar.hot .fill{background:#d0453a}
.bar-text{font-size:.9em;color:#445}
${Array.from({ length: 21 }, (_, i) => `.w${i * 5}{width:${i * 5}%}`).join("")}
form.filters{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin-bottom:.8em}
form.filters label{display:flex;flex-direction:column;font-size:.9em}
select,input,button{font:inherit;padding:.25em .4em}
.login{max-width:26em;margin:3em auto;background:#fff;border:1px solid #dde;border-radius:6px;padding:1.2em}
.login input{width:100%;margin:.4em 0 .8em}
.live{font-size:.85em}
ol.timeline{list-style:none;padding:0;margin:0 0 1em;background:#fff;border:1px solid #dde;border-radius:6px;max-height:28em;overflow-y:auto}
ol.timeline li{padding:.3em .6em;border-bottom:1px solid #eef}
ol.timeline time{color:#667;margin-right:.6em;font-size:.9em}
svg.spark{width:100%;height:70px;background:#fff;border:1px solid #dde;border-radius:6px}
.charts{display:flex;flex-wrap:wrap;gap:1em}.chart-box{flex:1 1 320px;min-width:0;background:#fff;border:1px solid #dde;border-radius:6px;padding:.3em}
.charts p{flex-basis:100%;margin:0}
a.button{display:inline-block;padding:.35em .9em;border:1px solid #b91c1c;border-radius:4px;color:#b91c1c;text-decoration:none;background:#fff}
button.danger{background:#b91c1c;color:#fff;border:0;border-radius:4px;padding:.45em 1em}
.task-filter a[aria-current]{font-weight:600;text-decoration:underline}
@media (max-width:600px){main{padding:.6em}header .me{margin-left:0;width:100%}h1{font-size:1.2em}}
`;
