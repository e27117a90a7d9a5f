"""notify: turns an officer-approved outreach task into a personal letter and tells the officer."""
