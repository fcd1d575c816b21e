import { Index, MetricKind, ScalarKind } from "usearch";
const d = 32, n = 100000;
const v = new Float32Array(n*d); const C=64; const cent=new Float32Array(C*d); for (let i=0;i<cent.length;i++) cent[i]=(Math.random()*2-1)*3;
for (let i=0;i<n;i++){const c=i%C; for(let j=0;j<d;j++) v[i*d+j]=cent[c*d+j]+ (Math.random()+Math.random()+Math.random()-1.5);}
const keys = new BigUint64Array(n); for (let i=0;i<n;i++) keys[i]=BigInt(i);
const [conn, ea, es, K] = process.argv.slice(2).map(Number);
const idx = new Index({dimensions: d, metric: MetricKind.L2sq, quantization: ScalarKind.F32, connectivity: conn, expansion_add: ea, expansion_search: es, multi: false});
let t=Date.now();
for (let s=0;s<n;s+=10000) idx.add(keys.subarray(s,s+10000), v.subarray(s*d,(s+10000)*d), 2);
console.log("add", Date.now()-t);
t=Date.now();
const r = idx.search(v.subarray(0, 10000*d), K, 2);
console.log("search 10k", Date.now()-t);
// recall vs brute force for 50 queries
let hit=0;
for (let q=0;q<50;q++){ const dist=new Float32Array(n); for(let i=0;i<n;i++){let s=0;for(let j=0;j<d;j++){const x=v[q*d+j]-v[i*d+j];s+=x*x;}dist[i]=s;}
 const ord=Array.from(dist.keys()).sort((a,b)=>dist[a]-dist[b]).slice(0,K); const set=new Set(ord);
 for(let j=0;j<K;j++) if(set.has(Number(r.keys[q*K+j]))) hit++; }
console.log("recall", hit/(50*K));
