// The embeddable player (/embed): play/pause, volume, now playing and the
// spectrum, for an iframe on another site:
//   <iframe src="https://radio.example.com/embed" width="480" height="160" title="SonicForge radio"></iframe>

import "./styles/embed.css";

import { startStation } from "./lib/station";

startStation();
