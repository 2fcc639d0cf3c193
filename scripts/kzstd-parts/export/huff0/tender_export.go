// Exported view of klauspost/compress huff0's internal minSize, added to a
// private GOPATH copy of the package (crates/test-support) so that
// scripts/kzstd-parts can check it. Not part of klauspost/compress.

package huff0

// TenderMinSize is minSize: the Shannon limit of the last histogram.
func (s *Scratch) TenderMinSize(total int) int { return s.minSize(total) }
