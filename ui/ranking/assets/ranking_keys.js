// Keyboard for the Ranking tab (loaded into the page <head> by ui/ranking/tab.py).
// Keys click the answer buttons by elem_id; auto-repeat, keys typed into fields and a
// second press on a pair already answered are ignored (the server refuses it too).
(() => {
  if (window.__psKeys) return;
  window.__psKeys = true;
  const MAP = {"1": "ps-vote-left", "ArrowLeft": "ps-vote-left", "2": "ps-vote-right",
    "ArrowRight": "ps-vote-right", "3": "ps-vote-tie", "ArrowUp": "ps-vote-tie",
    "s": "ps-skip", "S": "ps-skip", "ArrowDown": "ps-skip", "z": "ps-undo", "Z": "ps-undo",
    "Backspace": "ps-undo"};
  const ANSWERS = new Set(["ps-vote-left", "ps-vote-right", "ps-vote-tie", "ps-skip"]);
  // A key within MIN_LOOK_MS of a new pair is the tail of a double press (nobody judges
  // two pictures that fast): it is refused, never queued onto a pair not yet seen, and
  // the refusal is shown (an outline and a line of text, REFUSED_MS) so the labeler
  // knows to press again.
  const MIN_LOOK_MS = 150;
  const REFUSED_MS = 1200;
  const REFUSED_TEXT = "Too soon: that key came as this pair appeared. Look, then press again.";
  const RETRY_MS = 2500;     // an unanswered press may be retried after this long
  let seen = null, seenAt = 0, answered = null, answeredAt = 0, audio = null, refusedTimer = 0;
  const pairEl = () => document.querySelector("#ps-pair .ps-pair");
  const track = () => {
    const el = pairEl(), id = el ? el.dataset.pairId : null;
    if (id !== seen) { seen = id; seenAt = performance.now(); }
  };
  new MutationObserver(track).observe(document.documentElement, {childList: true, subtree: true});
  const button = (id) => {
    const el = document.getElementById(id);
    return el && el.tagName !== "BUTTON" ? el.querySelector("button") || el : el;
  };
  const blip = () => {
    const el = pairEl();
    if (!el || el.dataset.sound !== "1") return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 740; gain.gain.value = 0.04;
      osc.connect(gain).connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.035);
    } catch (e) { /* no audio: fine */ }
  };
  const refuse = (el) => {
    el.classList.add("ps-refused");
    const msg = el.querySelector(".ps-message");
    if (msg) msg.textContent = REFUSED_TEXT;
    clearTimeout(refusedTimer);
    refusedTimer = setTimeout(() => el.classList.remove("ps-refused"), REFUSED_MS);
  };
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#ps-vote-left, #ps-vote-right, #ps-vote-tie")) blip();
  }, true);
  document.addEventListener("keydown", (e) => {
    if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const id = MAP[e.key];
    const el = pairEl();
    if (!id || !el || el.offsetParent === null) return;  // not on the Ranking tab
    const btn = button(id);
    if (!btn) return;
    e.preventDefault();
    if (ANSWERS.has(id)) {
      track();
      const now = performance.now(), pid = el.dataset.pairId;
      if (!pid) return;
      if (answered === pid && now - answeredAt < RETRY_MS) return;  // this pair is answered
      if (now - seenAt < MIN_LOOK_MS) { refuse(el); return; }
      answered = pid; answeredAt = now;
    }
    btn.click();
  }, true);
})();
