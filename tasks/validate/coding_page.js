// Keyboard coding: every key that codes is stored at once, then the next video opens.
const state = JSON.parse(document.getElementById("state").dataset.state);
const status = document.getElementById("status");

async function send(action, label) {
  status.textContent = "saving…";
  const response = await fetch("/api/codes", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ coder: state.coder, position: state.position, action, label }),
  });
  if (!response.ok) {
    status.textContent = "not saved: " + (await response.text());
    return null;
  }
  const saved = await response.json();
  document.getElementById("progress").textContent = `${saved.coded} of ${saved.total} coded`;
  status.textContent = "saved";
  return saved;
}

function go(position) {
  window.location.href = `/code/${encodeURIComponent(state.coder)}/${position}`;
}

async function code(action, label) {
  const saved = await send(action, label);
  if (saved && action !== "flag" && state.position < saved.total) go(state.position + 1);
  if (saved && action === "flag") document.getElementById("flag").classList.toggle("on");
  if (saved && action !== "flag") {
    document.querySelectorAll("#labels button").forEach((b) => {
      b.classList.toggle("chosen", b.dataset.label === label || b.dataset.action === action);
    });
  }
}

function step(by) {
  const slides = [...document.querySelectorAll(".slide")];
  const at = slides.findIndex((s) => s.classList.contains("shown"));
  if (at < 0) return;
  slides[at].classList.remove("shown");
  slides[(at + by + slides.length) % slides.length].classList.add("shown");
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const number = Number.parseInt(event.key, 10);
  if (number >= 1 && number <= state.labels.length) code("label", state.labels[number - 1]);
  else if (event.key === "s") code("skip");
  else if (event.key === "f") code("flag");
  else if (event.key === "ArrowRight" && state.position < state.total) go(state.position + 1);
  else if (event.key === "ArrowLeft" && state.position > 1) go(state.position - 1);
  else if (event.key === ".") step(1);
  else if (event.key === ",") step(-1);
  else if (event.key === " ") {
    const player = document.getElementById("player");
    if (player) player.paused ? player.play() : player.pause();
  } else return;
  event.preventDefault();
});

document.querySelectorAll("#labels button").forEach((button) => {
  button.addEventListener("click", () =>
    button.dataset.label ? code("label", button.dataset.label) : code(button.dataset.action),
  );
});
